"""Talking to the Kubernetes API server without the ``kubernetes`` package.

kopf brings its own asynchronous client; the operator needs only a login (:mod:`.login`,
with kubeconfig ``exec`` plugins in :mod:`.exec_plugin`) and a few synchronous calls from
handler threads (:mod:`.client`). The official client would cost the operator about 10 MiB
of memory, 260 modules and a fifth of its start-up imports, and kopf imports it whenever it
is installed.
"""

from mme_operator.kube.client import KubeApiError, KubeClient, SharedLogin
from mme_operator.kube.login import KubeLoginError, login

__all__ = ["KubeApiError", "KubeClient", "KubeLoginError", "SharedLogin", "login"]
