"""lrl_utils: the logic behind the lrl-adapt notebooks.

Modules are named after the paper's concepts (data sources, language adapters, training, evaluation,
tasks, reporting); see docs/architecture.md. Importing the package is cheap: heavy libraries (torch,
transformers, adapters) are imported only by the modules that need them.
"""

__version__ = "0.1.0"
