from .sam_data_preprocessor import SAMDataPreprocessor

EVFDataPreprocessor = SAMDataPreprocessor  # the name of the first release

__all__ = ['EVFDataPreprocessor', 'SAMDataPreprocessor']
