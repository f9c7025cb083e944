from .sam_data_preprocessor import SAMDataPreprocessor

__all__ = ['SAMDataPreprocessor']
