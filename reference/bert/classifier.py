"""Sentence classifier on top of BERT, staff reference of minbert's classifier.py.

The sentence is represented by BERT's pooler output (the transformed [CLS] token); a dropout
and a linear layer turn it into class scores. With option 'pretrain' BERT is a frozen feature
extractor and only that head learns; with 'finetune' every parameter learns.
"""
import torch
import torch.nn.functional as F

from bert import BertModel


class BertSentClassifier(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.option not in ("pretrain", "finetune"):
            raise ValueError(f"config.option must be 'pretrain' or 'finetune', got {config.option!r}")
        self.num_labels = config.num_labels
        self.bert = BertModel.from_pretrained("bert-base-uncased")

        for param in self.bert.parameters():
            param.requires_grad = config.option == "finetune"

        self.dropout = torch.nn.Dropout(config.hidden_dropout_prob)
        # The width comes from the loaded checkpoint, which need not be config.hidden_size.
        self.classifier = torch.nn.Linear(self.bert.config.hidden_size, self.num_labels)

    def forward(self, input_ids, attention_mask):
        """input_ids, attention_mask: [bs, seq] -> log-probabilities [bs, num_labels]."""
        outputs = self.bert(input_ids, attention_mask)
        pooled = outputs["pooler_output"]
        pooled = self.dropout(pooled)
        logits = self.classifier(pooled)
        return F.log_softmax(logits, dim=-1)
