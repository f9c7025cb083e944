# Add to a config's _base_ to log scalars (losses, lr, cIoU) to TensorBoard as well:
#   _base_ = [..., '../_base_/tensorboard.py']
# Events go to work_dirs/<config>/<timestamp>/vis_data/; view with `tensorboard --logdir work_dirs`.
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='ReferSegVisualizer', vis_backends=vis_backends, name='visualizer')
