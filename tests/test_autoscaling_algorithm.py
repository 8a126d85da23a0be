"""The local autoscaler's replica calculation against the HorizontalPodAutoscaler's documented behaviour:
tolerance, ceil(total / target), the default scale-up limit, the scale-down stabilization window, bounds."""

from components.autoscaling.algorithm import HorizontalScaler, ScalingBehavior


def scaler(min_replicas=1, max_replicas=10, window=300.0):
    return HorizontalScaler(min_replicas, max_replicas, target=10.0,
                            behavior=ScalingBehavior(scale_down_stabilization_s=window))


def test_a_ratio_within_the_10_percent_tolerance_changes_nothing():
    decision = scaler().decide(0.0, current=2, total=21.0)
    assert (decision.desired, decision.recommended) == (2, 2) and "within the tolerance" in decision.message
    assert scaler().decide(0.0, current=2, total=23.0).desired == 3  # 11.5 per replica: outside


def test_desired_is_ceil_of_total_over_target():
    decision = scaler().decide(0.0, current=1, total=31.0)
    assert (decision.desired, decision.reason) == (4, "DesiredWithinRange")


def test_scale_up_is_limited_to_4_replicas_or_100_percent_per_15_seconds():
    autoscaler = scaler()
    first = autoscaler.decide(0.0, current=1, total=100.0)
    assert (first.desired, first.recommended, first.reason) == (5, 10, "ScaleUpLimit")
    within_period = autoscaler.decide(5.0, current=5, total=100.0)
    assert (within_period.desired, within_period.reason) == (5, "ScaleUpLimit")  # the period began at 1
    after_period = autoscaler.decide(16.0, current=5, total=100.0)
    assert (after_period.desired, after_period.reason) == (10, "DesiredWithinRange")  # max(5 + 4, 5 x 2)


def test_scale_down_takes_the_highest_recommendation_of_the_stabilization_window():
    autoscaler = scaler(window=300.0)
    assert autoscaler.decide(0.0, current=4, total=40.0).desired == 4
    held = autoscaler.decide(10.0, current=4, total=10.0)
    assert (held.desired, held.recommended, held.reason) == (4, 1, "ScaleDownStabilized")
    partly = scaler(window=300.0)
    partly.decide(0.0, 4, 40.0)
    partly.decide(100.0, 4, 20.0)
    assert partly.decide(200.0, 4, 10.0).desired == 4
    assert partly.decide(301.0, 4, 10.0).desired == 2  # t=0's 4 left the window; t=100's 2 is the highest
    assert partly.decide(401.0, 2, 10.0).desired == 1


def test_the_bounds_win_and_say_so():
    low = scaler(min_replicas=2, window=0.0).decide(0.0, current=3, total=0.0)
    assert (low.desired, low.reason) == (2, "TooFewReplicas")
    high = scaler(max_replicas=10).decide(0.0, current=10, total=1000.0)
    assert (high.desired, high.reason) == (10, "TooManyReplicas")


def test_no_reading_keeps_the_replicas():
    decision = scaler().decide(0.0, current=3, total=None)
    assert (decision.desired, decision.reason) == (3, "FailedGetMetric")
