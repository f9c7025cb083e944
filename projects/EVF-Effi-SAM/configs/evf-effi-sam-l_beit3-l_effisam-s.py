# EVF-Effi-SAM-L (EVF-SAM paper, Tab. 7): BEiT-3-Large + EfficientSAM-S, 700M parameters
# (700,427,492 in the official code). Trained on RefCOCO here:
#   tools/dist_train.sh projects/EVF-Effi-SAM/configs/evf-effi-sam-l_beit3-l_effisam-s.py 4
_base_ = ['./_base_effi_refcoco.py']
