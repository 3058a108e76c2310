# The hub image for Zero to JupyterHub (hub.image in values.yaml): the chart's own hub image plus
# llminspect's class-code authenticator (it needs only the standard library and JupyterHub).
# Build from the project folder:  docker build -f deploy/kubernetes/hub.Dockerfile -t llminspect-hub:0.1.0 .
# Pick the hub image of the chart version you install (its JupyterHub must offer request_otp, 5.0+).
# (Not built on the development machines: they have no container engine running.)
ARG HUB_IMAGE=quay.io/jupyterhub/k8s-hub:4.3.1
FROM ${HUB_IMAGE}
COPY . /tmp/llminspect
RUN pip install --no-cache-dir --no-deps /tmp/llminspect && rm -rf /tmp/llminspect
