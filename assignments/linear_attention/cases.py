"""Graded cases of the kernelized linear attention homework.

Feature maps are judged by their Gram matrix phi(X) phi(X)^T (the kernel values), since any
order or grouping of the features is a correct answer. Attention is graded with feature maps
the grader supplies (Glue), so a wrong feature map does not also fail the attention cases.
"""
from grader.cases import Call, Complexity, Glue, GpuTiming, In, Randn, Value, gram, rows_match

B, H, N, D, M = 2, 3, 24, 4, 5
SIGMA2 = 2.0                      # sqrt(D) for D = 4: the softmax temperature, and != 1 on purpose
ELU = Glue("elu_plus_one")
FAVOR = Glue("positive_random_features", {"W": In("W")})


def qkv(*lead, n=N, d=D, m=M, **extra):
    return {"Q": Randn(*lead, n, d), "K": Randn(*lead, n, d), "V": Randn(*lead, n, m), **extra}


def linear_in_n(n):
    return {"Q": Randn(1, n, 8, scale=0.5), "K": Randn(1, n, 8, scale=0.5), "V": Randn(1, n, 8)}


GRAM = dict(derive=gram, derived="Gram matrix phi(X) phi(X)^T", derive_check=rows_match)

CASES = [
    # softmax attention, the quadratic baseline
    Value("softmax_attention", 2, call=Call("softmax_attention", ("Q", "K", "V")), inputs=qkv(B)),
    Value("softmax_attention, causal", 2, call=Call("softmax_attention", ("Q", "K", "V"), {"causal": True}),
          inputs=qkv(B)),
    Value("softmax_attention, causal, batch x heads", 1, visibility="hidden",
          call=Call("softmax_attention", ("Q", "K", "V"), {"causal": True}), inputs=qkv(B, H, n=17)),

    # feature maps
    Value("polynomial_feature_map: kernel (1 + q.k)^2", 2, call=Call("polynomial_feature_map", ("X",)),
          inputs={"X": Randn(B, N, D)}, **GRAM),
    Value("polynomial_feature_map, batch x heads", 1, visibility="hidden",
          call=Call("polynomial_feature_map", ("X",)), inputs={"X": Randn(B, H, 9, 6)}, **GRAM),
    Value("random_feature_map", 2, call=Call("random_feature_map", ("X", "W")),
          inputs={"X": Randn(B, N, D), "W": Randn(64, D, scale=SIGMA2 ** -0.5)}, **GRAM),
    Value("softmax_kernel_feature_map", 2, call=Call("softmax_kernel_feature_map", ("X", "W"), {"sigma2": SIGMA2}),
          inputs={"X": Randn(B, N, D, scale=0.5), "W": Randn(64, D, scale=SIGMA2 ** -0.5)}, **GRAM),

    # non-causal kernel attention
    Value("kernel_attention (elu + 1 features)", 3, call=Call("kernel_attention", ("Q", "K", "V", ELU)),
          inputs=qkv(B)),
    Value("kernel_attention, batch x heads, positive random features", 2, visibility="hidden",
          call=Call("kernel_attention", ("Q", "K", "V", FAVOR)),
          inputs=qkv(B, H, W=Randn(32, D), n=20)),
    Value("kernel_attention gradients", 2, call=Call("kernel_attention", ("Q", "K", "V", ELU), grad=("Q", "K", "V")),
          inputs=qkv(B, dOut=Randn(B, N, M))),

    # causal kernel attention
    Value("causal_kernel_attention (elu + 1 features)", 3,
          call=Call("causal_kernel_attention", ("Q", "K", "V", ELU)), inputs=qkv(B)),
    Value("causal_kernel_attention, N = 200, batch x heads", 2, visibility="hidden",
          call=Call("causal_kernel_attention", ("Q", "K", "V", ELU)), inputs=qkv(B, H, n=200)),
    Value("causal_kernel_attention gradients", 2,
          call=Call("causal_kernel_attention", ("Q", "K", "V", ELU), grad=("Q", "K", "V")),
          inputs=qkv(B, dOut=Randn(B, N, M))),

    # complexity: counted operations at growing N, machine-independent
    Complexity("kernel_attention is linear in N", 3, call=Call("kernel_attention", ("Q", "K", "V", ELU)),
               inputs_at=linear_in_n),
    Complexity("causal_kernel_attention is linear in N", 3,
               call=Call("causal_kernel_attention", ("Q", "K", "V", ELU)), inputs_at=linear_in_n),
    GpuTiming("causal_kernel_attention GPU time vs reference", 0,
              call=Call("causal_kernel_attention", ("Q", "K", "V", ELU)),
              inputs_at=lambda n: {"Q": Randn(4, 8, n, 64, scale=0.1), "K": Randn(4, 8, n, 64, scale=0.1),
                                   "V": Randn(4, 8, n, 64)}),
]
