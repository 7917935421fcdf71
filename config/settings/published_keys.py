"""Seal keys that are public because they are written here: the demo's, the tests' and the image build's.

Production refuses them (``production.py``): answers sealed with a key anyone can read
are not sealed at all.
"""

from __future__ import annotations

LOCAL_RESPONSE_SEAL_KEY = "FrJxpLUzeJvcUwsKYWbl39iQms9AnPUxesnEyguEqA0="
TEST_RESPONSE_SEAL_KEY = "v7VWUUeLSDlIVX0ITKnEHCXrQKafqKe2fxNSfS_V8Pc="
# Only for `collectstatic` while the Docker image is built (see Dockerfile).
IMAGE_BUILD_RESPONSE_SEAL_KEY = "Oz1nXjPkPnoG7QTlvtJBPnnM8YATe-zS4a_o1yqIaUo"
PUBLISHED = (LOCAL_RESPONSE_SEAL_KEY, TEST_RESPONSE_SEAL_KEY, IMAGE_BUILD_RESPONSE_SEAL_KEY)
