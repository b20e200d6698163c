"""References written from scratch, one model at a time, that the batched families are tested against.

They share nothing with ``ecosystem.families``: only initial weight values are copied in, and the two
follow the same documented protocol for random numbers (which uniform decides which token, how training
batches are drawn), so that their numbers can be compared exactly.
"""
