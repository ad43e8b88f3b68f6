"""Evaluation of model folders on labelled test sets: metrics (WER, macro mAP, EER/minDCF) and the
`training/evaluate.py` runner."""
