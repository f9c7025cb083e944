from .evf_data_preprocessor import EVFDataPreprocessor

__all__ = ['EVFDataPreprocessor']
