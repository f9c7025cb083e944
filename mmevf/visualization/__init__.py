from .refer_seg_visualizer import ReferSegVisualizer, no_target_label

__all__ = ['ReferSegVisualizer', 'no_target_label']
