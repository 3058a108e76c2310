"""The same room on Kubernetes: a Zero to JupyterHub values file made from a room's plan.

One box serves a room of ~30 on CPU (see README "For instructors"); past that, Zero to
JupyterHub (the JupyterHub Helm chart) runs each learner in a pod. The choices stay the plan's:
the class-code sign-in and its lockout (the authenticator reads the plan), the limits (memory, at
most ``cpu_per_learner`` cores, a volume of ``disk_mib`` for the home and a /tmp of the same size;
processes are the kubelet's ``podPidsLimit``, which a chart cannot set, so the file's header says
it), the idle culler, the lessons copied at first start, the read-only model cache and no way out
to the internet. The class page reads learners' homes on one box and is not part of this file. Print the file with
``python -m llminspect.room.kubernetes > values.yaml``; ``deploy/kubernetes/values.yaml`` is
this output for a default plan. The images it names are built from ``deploy/kubernetes/``.

Example:
    >>> v = values(RoomPlan.new(Path("/srv/jupyterhub/llminspect"), class_code="owl-42"))
    >>> v["singleuser"]["memory"]["limit"], v["singleuser"]["cpu"]["limit"], v["singleuser"]["storage"]["capacity"]
    ('3072M', 1.0, '2048Mi')
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from llminspect.room.hub import ANNOUNCEMENT, FIRST_LESSON, LAB_ARGS
from llminspect.room.plan import RoomPlan

IMAGE_ROOT = Path("/opt/llminspect")  # where the learner image keeps the models and the lessons
HUB_ROOT = Path("/srv/jupyterhub/llminspect")  # on the hub's persistent volume: plan and name claims
GUARANTEE_MIB = 1024  # measured: a learner through lessons 00/03/05 holds well under this (PSS)


def values(plan: RoomPlan, image_tag: str = "0.1.0") -> dict:
    """Zero to JupyterHub chart values equivalent to ``plan``'s room."""
    image = RoomPlan.new(IMAGE_ROOT, class_code=plan.class_code, admin_password=plan.admin_password)
    hub_plan = plan.with_choices(root=HUB_ROOT)
    learner_env = {k: v for k, v in image.learner_env().items() if k != "LD_LIBRARY_PATH"}
    copy_lessons = f"test -e $HOME/lessons || cp -r {image.lessons} $HOME/lessons"
    return {
        "hub": {
            "image": {"name": "llminspect-hub", "tag": image_tag},
            "config": {
                "JupyterHub": {"authenticator_class": "llminspect.room.authenticator.ClassCodeAuthenticator",
                               "template_vars": {"announcement_login": ANNOUNCEMENT}},
                "ClassCodeAuthenticator": {"plan_file": str(hub_plan.plan_file), "create_system_users": False},
                "Authenticator": {"allow_all": True, "admin_users": [plan.admin], "request_otp": True,
                                  "otp_prompt": "Class code (on the board):"},
            },
            "extraFiles": {"room-plan": {"mountPath": str(hub_plan.plan_file), "stringData": hub_plan.to_json()}},
        },
        "singleuser": {
            "image": {"name": "llminspect-lab", "tag": image_tag},
            "defaultUrl": f"/lab/tree/lessons/{FIRST_LESSON}",
            "extraEnv": learner_env,
            "memory": {"limit": f"{plan.memory_limit_mib}M", "guarantee": f"{GUARANTEE_MIB}M"},
            "cpu": {"limit": plan.cpu_per_learner, "guarantee": min(0.5, plan.cpu_per_learner)},
            "storage": {"type": "dynamic", "capacity": f"{plan.disk_mib}Mi",
                        "extraVolumes": [{"name": "tmp", "emptyDir": {"sizeLimit": f"{plan.disk_mib}Mi"}}],
                        "extraVolumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]},
            "lifecycleHooks": {"postStart": {"exec": {"command": ["sh", "-c", copy_lessons]}}},
            "cmd": ["jupyterhub-singleuser", *LAB_ARGS],
            "networkPolicy": {"enabled": True,
                              "egressAllowRules": {"nonPrivateIPs": False, "dnsPortsPrivateIPs": True}},
        },
        "cull": {"enabled": True, "timeout": plan.idle_timeout_s, "every": 300},  # the chart runs the idle culler
        "prePuller": {"hook": {"enabled": True}, "continuous": {"enabled": True}},
        "scheduling": {"userScheduler": {"enabled": True}},
    }  # fmt: skip


def main() -> None:
    plan = RoomPlan.new(HUB_ROOT, class_code="change-me", admin_password="change-me")
    print("# Zero to JupyterHub values for an llminspect room; made by `python -m llminspect.room.kubernetes`.")
    print("# Set the class code and the instructor's password in hub.extraFiles.room-plan before installing.")
    print(f"# Processes per learner: set the kubelet's podPidsLimit: {plan.processes_per_learner} on the nodes "
          "(a chart cannot).")
    yaml.safe_dump(values(plan), sys.stdout, sort_keys=False, width=110)


if __name__ == "__main__":
    main()
