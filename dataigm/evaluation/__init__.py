"""Evaluation: forgetting and preservation rates with their intervals, fidelity, CSDR, judge validity and audits,
for unlearned models' images read from folders, shards or other benchmarks' layouts."""
