"""NeRF study: nerfacto through nerfstudio's own tools, tracked in MLflow (entry point ``nerf``)."""
