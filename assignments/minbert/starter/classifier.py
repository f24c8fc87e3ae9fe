"""Sentence classification with BERT: the classifier you implement.

BertSentClassifier encodes a sentence with BERT, takes the pooler output (the transformed
[CLS] token), applies dropout and a linear layer, and returns log-probabilities of the labels.
Train it with F.nll_loss on SST or CFIMDB (lines `label ||| sentence`).
"""
import random

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from tqdm import tqdm

from bert import BertModel
from optimizer import AdamW
from tokenizer import BertTokenizer


def seed_everything(seed=11711):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class BertSentClassifier(torch.nn.Module):
    def __init__(self, config):
        """config.num_labels: number of classes; config.hidden_dropout_prob: dropout before the
        linear layer; config.option: 'pretrain' (BERT frozen, only the new layer learns) or
        'finetune' (all parameters learn)."""
        super().__init__()
        self.num_labels = config.num_labels
        self.bert = BertModel.from_pretrained("bert-base-uncased")

        # 'pretrain' does not update the BERT parameters.
        for param in self.bert.parameters():
            if config.option == "pretrain":
                param.requires_grad = False
            elif config.option == "finetune":
                param.requires_grad = True

        # TODO: the dropout and the linear layer of the classification head. Its input width
        #       is self.bert.config.hidden_size.
        raise NotImplementedError

    def forward(self, input_ids, attention_mask):
        """input_ids, attention_mask: [bs, seq] -> log-probabilities [bs, num_labels]."""
        # TODO: the sentence is represented by BERT's pooler output ('pooler_output').
        raise NotImplementedError
