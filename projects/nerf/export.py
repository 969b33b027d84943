"""The trained scene as a point cloud with ``ns-export pointcloud``: a ``.ply`` artifact and its size."""

from __future__ import annotations

from pathlib import Path

import mlflow


def ply_vertex_count(path: Path) -> int:
    """Points in a PLY file, read from its header."""
    with path.open("rb") as handle:
        for raw in handle:
            line = raw.decode("ascii", "replace").strip()
            if line.startswith("element vertex"):
                return int(line.split()[-1])
            if line == "end_header":
                break
    raise ValueError(f"{path} has no vertex element")


def export_point_cloud(config_yml: Path, out_dir: Path, num_points: int) -> int:
    """nerfstudio's ExportPointCloud; normals from open3d since nerfacto does not predict them by default."""
    from nerfstudio.scripts.exporter import ExportPointCloud

    ExportPointCloud(
        load_config=config_yml, output_dir=out_dir, num_points=num_points, normal_method="open3d"
    ).main()
    ply = out_dir / "point_cloud.ply"
    points = ply_vertex_count(ply)
    mlflow.log_artifact(str(ply), "pointcloud")
    mlflow.log_metric("pointcloud/num_points", points)
    return points
