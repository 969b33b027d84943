"""CV experiment platform: SimCLR (projects.ssl), ViT vs CNN (projects.classify), NeRF (projects.nerf)."""

import warnings

# timm 0.6.7 (pinned by nerfstudio) decorates functions with torch.jit.script at import time.
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
