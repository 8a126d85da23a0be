"""The pipeline steps. Each step folder holds the plain-Python core (`core.py`), its thin KFP component
(`kfp_component.py`, compiled to `component.yaml`) and its Hera script template (`hera_template.py`).
Both wrappers call the same core; neither holds logic of its own.
"""
