"""Progressive delivery: traffic in steps, a live guard on real traffic, webhooks and approval, resumable
(policy.py, guard.py, hooks.py, controller.py). The controller is written once over the platform protocol."""
