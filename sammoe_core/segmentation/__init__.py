"""From prompts to a label map: prompts and their geometry, crop intensities, the predictor seam
(:class:`~sammoe_core.segmentation.predictor.CropPredictor`), the per-volume pipeline with edge
extension and blending, and how several targets share the voxels of one volume."""
