"""Inference with fine-tuned models: NER prediction (``ner_predict``) and de-identification (``deid``)."""
