"""Trained models applied to one's own data: forecasts of 3D recordings, 3D poses lifted from detector keypoints,
frame-by-frame streaming, and smoothing of lifted poses."""
