# Not a paper row: evf-tiny_synthref-g.py without the NoTargetHead, the baseline it is compared
# with. The no-target expressions train towards their empty masks (BCE + dice on every
# expression), and GReferSegMetric reads an empty predicted mask as "no target": N-acc counts
# the no-target expressions whose whole mask stays below the threshold.
_base_ = ['./evf-tiny_synthref-g.py']

model = dict(no_target_head=None)
