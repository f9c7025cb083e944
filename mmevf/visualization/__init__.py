from .refer_seg_visualizer import ReferSegVisualizer

__all__ = ['ReferSegVisualizer']
