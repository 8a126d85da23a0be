"""The KFP pipelines (DAGs) built from meshserve's components."""

from kfp import dsl, kubernetes

from components.steps.cluster import (
    MODELS_CLAIM,
    MODELS_MOUNT,
    STORAGE_ENV,
    STORAGE_SECRET,
    STORAGE_SECRET_MOUNT,
)
from components.steps.deploy.kfp_component import deploy
from components.steps.progressive.kfp_component import progressive_rollout
from components.steps.rollout.kfp_component import roll_back_on_failure
from components.steps.train.kfp_component import train
from components.steps.upload.kfp_component import upload

RUN_OWNER = dsl.PIPELINE_JOB_ID_PLACEHOLDER  # the canary belongs to this run: another run's exit task leaves it


def never_cached(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """A task with a side effect or a measurement: KFP must run it every time, never replay an earlier run's
    outputs (a cached deploy or analysis would report a PROMOTE without deploying or measuring anything).
    Training and upload stay cacheable: their outputs are content-addressed."""
    return task.set_caching_options(False)

def with_model_storage(task: dsl.PipelineTask, models_claim=MODELS_CLAIM,
                       storage_secret=STORAGE_SECRET) -> dsl.PipelineTask:
    """Mount the models claim and the (optional) storage Secret into a task that touches storage.

    Both names may be run parameters: the claim is mounted at a fixed path the step is told about.
    """
    kubernetes.mount_pvc(task, pvc_name=models_claim, mount_path=MODELS_MOUNT)
    kubernetes.use_secret_as_volume(task, secret_name=storage_secret, mount_path=STORAGE_SECRET_MOUNT,
                                    optional=True)
    for name, value in STORAGE_ENV.items():
        task.set_env_variable(name, value)
    return task


@dsl.pipeline(name="meshserve-train-upload", description="Train and evaluate a model, then publish it as a version")
def train_upload_pipeline(
    dataset: str = "digits",
    framework: str = "sklearn",
    algorithm: str = "",
    storage_prefix: str = f"pvc://{MODELS_CLAIM}/meshserve",
    seed: int = 0,
) -> str:
    """train → upload; returns the storageUri of the published version."""
    trained = train(framework=framework, dataset=dataset, algorithm=algorithm, seed=seed)
    trained.set_display_name("train")
    published = with_model_storage(upload(model=trained.outputs["model"], to=storage_prefix))
    published.set_display_name("upload")
    return published.outputs["storage_uri"]


# The gate's policy for the train-to-serve run: absolute SLOs decide a first deploy (no baseline); later
# runs are compared with a fresh copy of the primary under the gate's default limits, analysed sequentially
# (tests/bench/bench_analysis.py measures what they detect).
LOCAL_POLICY = {"slo": {"max_p99_ms": 50.0, "min_accuracy": 0.9}}
# The rollout's steps for the local run: 10% → 50% → 100%, each held for two 5 s guard intervals of the
# background traffic `meshserve run` sends; the analysis runs at the first step.
LOCAL_ROLLOUT = {"steps": [10, 50, 100], "interval_s": 5.0, "intervals_per_step": 2}


@dsl.pipeline(name="meshserve-train-to-serve",
              description="Train, publish, deploy a canary, take it through traffic steps guarded by live metrics "
                          "(analysed against a fresh copy of the primary at the first), promote or roll back")
def train_to_serve_pipeline(
    name: str = "digits",
    dataset: str = "digits",
    framework: str = "sklearn",
    algorithm: str = "",
    seed: int = 0,
    storage_prefix: str = f"pvc://{MODELS_CLAIM}/meshserve",
    models_claim: str = MODELS_CLAIM,
    storage_secret: str = STORAGE_SECRET,
    platform: str = "local",
    namespace: str = "default",
    runtime: str = "kserve-raw",
    router: str = "istio",
    autoscaling: str = "none",
    canary_percent: int = 0,
    min_replicas: int = 1,
    max_replicas: int = 1,
    scale_target: int = 0,
    scale_metric: str = "",
    scale_target_source: str = "",
    metric_selector: dict = {},  # noqa: B006
    cpu: str = "",
    memory: str = "",
    gpus: int = 0,
    node_selector: dict = {},  # noqa: B006 (KFP needs literal defaults)
    tolerations: list = [],  # noqa: B006
    service_account: str = "",
    storage_options: dict = {},  # noqa: B006
    runtime_options: dict = {},  # noqa: B006
    router_options: dict = {},  # noqa: B006
    protocol: str = "",
    qps: float = 500.0,
    budget_s: float = 120.0,
    policy: dict = LOCAL_POLICY,
    rollout_policy: dict = LOCAL_ROLLOUT,
):
    """The whole chain. platform local (kfp.local, `make run`) serves on this machine and ignores the
    deployment inputs; platform kubernetes applies them with the run's ServiceAccount (manifests/rbac).
    The load speaks the runtime's own protocol (KServe: v1 REST, OVMS: v2 gRPC, TF Serving: its REST API)
    unless `protocol` names another the runtime speaks.
    The canary starts at `canary_percent` (0: no traffic before the pre-rollout hooks) and takes the rollout
    policy's steps; at each the live guard reads real traffic (on a cluster, set `rollout_policy.guard.address`
    to the mesh's Prometheus), and at the first the analysis measures the canary and a fresh copy of the primary
    side by side for at most `budget_s` per side. If any step fails, the exit task rolls back the candidate the
    run left half-deployed."""
    cleanup = never_cached(roll_back_on_failure(name=name, platform=platform, namespace=namespace, owner=RUN_OWNER))
    cleanup.set_display_name("roll back on failure")
    with dsl.ExitHandler(cleanup, name="train-to-serve"):
        trained = train(framework=framework, dataset=dataset, algorithm=algorithm, seed=seed)
        trained.set_display_name("train")
        published = with_model_storage(upload(model=trained.outputs["model"], to=storage_prefix), models_claim,
                                       storage_secret)
        published.set_display_name("upload")
        deployed = never_cached(with_model_storage(deploy(
            name=name, storage_uri=published.outputs["storage_uri"], canary_percent=canary_percent,
            platform=platform, namespace=namespace, model_format=framework, runtime=runtime, router=router,
            autoscaling=autoscaling, min_replicas=min_replicas, max_replicas=max_replicas, scale_target=scale_target,
            scale_metric=scale_metric, scale_target_source=scale_target_source,
            metric_selector=metric_selector, cpu=cpu, memory=memory, gpus=gpus,
            node_selector=node_selector, tolerations=tolerations, service_account=service_account,
            storage_secret=storage_secret, storage_options=storage_options, runtime_options=runtime_options,
            router_options=router_options, owner=RUN_OWNER), models_claim,
            storage_secret))
        deployed.set_display_name("deploy canary")
        # One step drives the rollout as a controller would: steps, live guard, analysis at the first step,
        # hooks and gates; beside no primary (a first deploy) it is the analysis on the SLOs alone.
        rolled = never_cached(progressive_rollout(
            name=name, candidate_manifest=published.outputs["manifest"],
            baseline_manifest=deployed.outputs["baseline_manifest"], platform=platform, namespace=namespace,
            protocol=protocol, sample=dataset, qps=qps, budget_s=budget_s, policy=policy,
            rollout_policy=rollout_policy, owner=RUN_OWNER))
        rolled.set_display_name("progressive rollout")
