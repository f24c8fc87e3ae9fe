"""Reference implementations for attention homework (kernelized linear attention, CS182 HW10).

Submodules are imported explicitly (`reference.attention.linear_attention`,
`reference.attention.causal_forms`); `linear_attention.py` is self-contained because the
grader copies it verbatim as a student's submission when it verifies itself.
"""
