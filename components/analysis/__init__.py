"""The sequential side-by-side analysis: the candidate and a baseline measured in windows, judged after each
window with alpha spent over the planned looks, stopped as soon as every check is settled or one fails.
It uses the gate's checks' shapes and policy, and reads benchmark results through their contract."""
