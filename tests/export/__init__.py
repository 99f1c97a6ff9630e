"""Tests of the exports: the PIR, the communication drafts and the JSON contract."""
