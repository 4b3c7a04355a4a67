"""Neural networks: scikit-learn's multi-layer perceptron, and a dropout network on PyTorch (skorch).

Both are searched the way practitioners search networks: depth (``n_layers``) and width
(``n_units``) as two parameters rather than a ``hidden_layer_sizes`` tuple, the L2 penalty
(``alpha``; ``weight_decay`` for AdamW), the learning rate and the batch size. Against
overfitting: raise the penalty (and the dropout rate), narrow or shallow the network, stop earlier.

Each estimator trains one epoch at a time (:class:`EpochModel`), so the CV loop
(:func:`tuner.cv.fit_and_score`) measures the train and validation losses of every epoch, stops
early on a split of the training fold, and lets the pruner stop a trial between epochs. Their own
``fit`` trains to the epoch cap (``max_iter`` / ``max_epochs``): that is how a refit trains them,
with the cap set to the epochs the folds stopped at.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.neural_network import MLPClassifier, MLPRegressor

from tuner.models._registry import EpochHook, Knob, ModelEntry, cat, flt, integer


@runtime_checkable
class EpochModel(Protocol):
    """An estimator trained one epoch at a time by :func:`tuner.cv.fit_and_score`."""

    def start_epochs(self, X: Any, y: np.ndarray) -> None:
        """Forget any earlier fit and prepare to train on rows like ``X, y``."""

    def fit_epoch(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        """Train one more epoch on ``X, y`` (rows weighted by ``sample_weight`` when given)."""

    def epoch_loss(self, X: Any, y: np.ndarray) -> float:
        """The training loss (cross-entropy, or squared error) on ``X, y``, without dropout."""

    def epoch_weights(self) -> Any:
        """A copy of the weights, to restore with :meth:`set_epoch_weights`."""

    def set_epoch_weights(self, weights: Any) -> None:
        """Put back weights taken by :meth:`epoch_weights`."""

    def own_stopping(self) -> tuple[int, float] | None:
        """The model's own early stopping (patience in epochs, smallest improvement), or None."""

    def converged(self) -> bool:
        """Whether the model's own rule would stop training now (the training loss stalled)."""


class _Layered:
    """A scikit-learn perceptron whose hidden layers are ``n_layers`` layers of ``n_units`` units.

    The perceptron's other parameters keep scikit-learn's defaults as class attributes, so
    ``get_params`` lists what is worth searching and ``hidden_layer_sizes`` follows the two.
    """

    solver = "adam"
    learning_rate = "constant"
    power_t = 0.5
    shuffle = True
    verbose = False
    warm_start = False
    momentum = 0.9
    nesterovs_momentum = True
    beta_1 = 0.9
    beta_2 = 0.999
    epsilon = 1e-8
    max_fun = 15000

    n_layers: int
    n_units: int
    early_stopping: bool
    random_state: Any
    n_iter_no_change: int
    tol: float
    coefs_: list[np.ndarray]
    intercepts_: list[np.ndarray]

    def __init__(
        self,
        n_layers: int = 1,
        n_units: int = 100,
        *,
        activation: str = "relu",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state: Any = None,
    ) -> None:
        self.n_layers = n_layers
        self.n_units = n_units
        self.activation = activation
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state

    @property
    def hidden_layer_sizes(self) -> tuple[int, ...]:
        return (int(self.n_units),) * int(self.n_layers)

    def start_epochs(self, X: Any, y: np.ndarray) -> None:
        for name in ("coefs_", "_optimizer", "classes_", "_label_binarizer", "_no_improvement_count"):
            if hasattr(self, name):
                delattr(self, name)
        self._epoch_seeds = np.random.default_rng(self.random_state)

    def fit_epoch(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        saved = self.early_stopping, self.random_state
        # partial_fit refuses the model's own early stopping (the epoch loop stops on its own split
        # of the training rows instead), and would shuffle the rows in the same order every epoch
        # when random_state is a number: each epoch gets a seed of its own, drawn from it.
        self.early_stopping, self.random_state = False, int(self._epoch_seeds.integers(2**31 - 1))
        try:
            self._partial_fit(X, y, sample_weight)
        finally:
            self.early_stopping, self.random_state = saved

    def _partial_fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        raise NotImplementedError

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False) -> Any:
        # A searched batch size larger than a small training fold is that fold (scikit-learn
        # clips it too, but warns on every epoch).
        saved = self.batch_size
        rows = len(X)
        if self.early_stopping and not incremental:  # its own validation rows are split off first
            rows = int(rows * (1 - self.validation_fraction))
        if isinstance(saved, int) and saved > rows:
            self.batch_size = max(1, rows)
        try:
            return super()._fit(X, y, sample_weight=sample_weight, incremental=incremental)  # type: ignore[misc]
        finally:
            self.batch_size = saved

    def epoch_weights(self) -> Any:
        return [c.copy() for c in self.coefs_], [b.copy() for b in self.intercepts_]

    def set_epoch_weights(self, weights: Any) -> None:
        self.coefs_, self.intercepts_ = weights

    def own_stopping(self) -> tuple[int, float] | None:
        return (int(self.n_iter_no_change), float(self.tol)) if self.early_stopping else None

    def converged(self) -> bool:
        # scikit-learn's own rule when it does not stop early: the training loss improved by less
        # than `tol` for `n_iter_no_change` epochs (partial_fit keeps that count).
        return not self.early_stopping and getattr(self, "_no_improvement_count", 0) > self.n_iter_no_change


class MLPNetClassifier(_Layered, MLPClassifier):
    """scikit-learn's ``MLPClassifier`` with depth and width as two parameters, trained epoch by epoch."""

    loss = "log_loss"

    def _partial_fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        classes = None if hasattr(self, "classes_") else np.unique(y)
        self.partial_fit(X, y, sample_weight=sample_weight, classes=classes)

    def epoch_loss(self, X: Any, y: np.ndarray) -> float:
        return float(log_loss(y, self.predict_proba(X), labels=self.classes_))


class MLPNetRegressor(_Layered, MLPRegressor):
    """scikit-learn's ``MLPRegressor`` with depth and width as two parameters, trained epoch by epoch."""

    loss = "squared_error"

    def _partial_fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        self.partial_fit(X, y, sample_weight=sample_weight)

    def epoch_loss(self, X: Any, y: np.ndarray) -> float:
        return float(mean_squared_error(y, self.predict(X)))


class _TorchNet(BaseEstimator):
    """A dropout network trained with AdamW, on PyTorch through skorch (the ``torch`` extra).

    Runs on the CPU with one thread (parallelism comes from worker processes); ``random_state``
    seeds the weights, the dropout masks and the batch order, so a seed gives the same network.
    """

    _regression = False

    def __init__(
        self,
        n_layers: int = 2,
        n_units: int = 128,
        dropout: float = 0.2,
        weight_decay: float = 1e-4,
        lr: float = 1e-3,
        batch_size: int = 64,
        max_epochs: int = 30,
        random_state: Any = None,
    ) -> None:
        self.n_layers = n_layers
        self.n_units = n_units
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> Any:
        """Train ``max_epochs`` epochs on ``X, y``."""
        self.start_epochs(X, y)
        for _ in range(int(self.max_epochs)):
            self.fit_epoch(X, y)
        return self

    def start_epochs(self, X: Any, y: Any) -> None:
        import skorch  # optional extra: tuner[torch]
        import torch  # optional extra: tuner[torch]

        from tuner.models._torch_module import DropoutMLP  # optional extra: it imports torch

        torch.set_num_threads(1)
        if self.random_state is not None:
            # Weights, dropout masks and the batch order all draw from torch's generator.
            torch.manual_seed(int(np.random.default_rng(self.random_state).integers(2**31 - 1)))
        features = self._features(X)
        self._targets(y, fit=True)  # the classes, or the target scale
        self.n_features_in_ = features.shape[1]
        net = skorch.NeuralNetRegressor if self._regression else skorch.NeuralNetClassifier
        criterion = torch.nn.MSELoss if self._regression else torch.nn.CrossEntropyLoss
        self.net_ = net(
            module=DropoutMLP,
            module__n_in=features.shape[1],
            module__n_out=1 if self._regression else len(self.classes_),
            module__n_layers=int(self.n_layers),
            module__n_units=int(self.n_units),
            module__dropout=float(self.dropout),
            criterion=criterion,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=float(self.weight_decay),
            lr=float(self.lr),
            batch_size=int(self.batch_size),
            max_epochs=1,
            train_split=None,  # the epoch loop measures the losses on its own split
            iterator_train__shuffle=True,
            device="cpu",
            verbose=0,
        )
        self.net_.initialize()

    def fit_epoch(self, X: Any, y: Any, sample_weight: np.ndarray | None = None) -> None:
        # No sample weights (fit takes none, so `balance: class_weight` is refused before a trial).
        self.net_.partial_fit(self._features(X), self._targets(y))

    def epoch_loss(self, X: Any, y: Any) -> float:
        import torch  # optional extra: tuner[torch]

        module = self.net_.module_
        module.eval()  # no dropout
        # One forward pass over all rows (skorch's forward would iterate in training-sized batches).
        with torch.no_grad():
            output = module(torch.as_tensor(self._features(X)))
            return float(self.net_.criterion_(output, torch.as_tensor(self._targets(y))))

    def epoch_weights(self) -> Any:
        return copy.deepcopy(self.net_.module_.state_dict())

    def set_epoch_weights(self, weights: Any) -> None:
        self.net_.module_.load_state_dict(weights)

    def own_stopping(self) -> tuple[int, float] | None:
        return None

    def converged(self) -> bool:
        return False

    def _features(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=np.float32)

    def _targets(self, y: Any, *, fit: bool = False) -> np.ndarray:
        raise NotImplementedError


class TorchMLPClassifier(ClassifierMixin, _TorchNet):
    """The dropout network for classification: cross-entropy loss, softmax probabilities."""

    def _targets(self, y: Any, *, fit: bool = False) -> np.ndarray:
        y = np.asarray(y)
        if fit:
            self.classes_ = np.unique(y)
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.net_.predict_proba(self._features(X)), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


class TorchMLPRegressor(RegressorMixin, _TorchNet):
    """The dropout network for regression: squared error on the standardised target (its losses are
    in those units), predictions in the target's own."""

    _regression = True

    def _targets(self, y: Any, *, fit: bool = False) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if fit:
            self.y_mean_ = float(y.mean())
            self.y_scale_ = float(y.std()) or 1.0
        return ((y - self.y_mean_) / self.y_scale_).astype(np.float32).reshape(-1, 1)

    def predict(self, X: Any) -> np.ndarray:
        output = np.asarray(self.net_.predict(self._features(X)), dtype=np.float64).reshape(-1)
        return output * self.y_scale_ + self.y_mean_


def _mlp(kind: str) -> Any:
    cls = MLPNetClassifier if kind == "classifier" else MLPNetRegressor

    def build(**params: Any) -> Any:
        return cls(**params)

    return build


def _torch(kind: str) -> Any:
    cls = TorchMLPClassifier if kind == "classifier" else TorchMLPRegressor

    def build(**params: Any) -> Any:
        return cls(**params)

    return build


_MLP_SPACE = {
    "n_layers": integer(1, 3),
    "n_units": integer(16, 256, log=True),
    "alpha": flt(1e-6, 1e-1, log=True),
    "learning_rate_init": flt(1e-4, 1e-1, log=True),
    "batch_size": cat(32, 64, 128, 256),
    "early_stopping": cat(True, False),
}
_TORCH_SPACE = {
    "n_layers": integer(1, 3),
    "n_units": integer(32, 512, log=True),
    "dropout": flt(0.0, 0.5),
    "weight_decay": flt(1e-6, 1e-2, log=True),
    "lr": flt(1e-4, 1e-2, log=True),
    "batch_size": cat(32, 64, 128, 256),
    "max_epochs": integer(10, 60),
}
_WIDTH = Knob("n_units", "lower", "units per hidden layer")
_DEPTH = Knob("n_layers", "lower", "hidden layers")

ENTRIES = [
    ModelEntry(
        name="mlp",
        description="scikit-learn multi-layer perceptron on standardised features (depth × width, L2)",
        classifier=_mlp("classifier"),
        regressor=_mlp("regressor"),
        classifier_space=_MLP_SPACE,
        regressor_space=_MLP_SPACE,
        scale=True,
        epochs=EpochHook("max_iter"),
        knobs=(Knob("alpha", "higher", "L2 penalty on the weights"), _WIDTH, _DEPTH),
    ),
    ModelEntry(
        name="torch_mlp",
        description="PyTorch dropout network (AdamW), via skorch (pip install 'tuner[torch]')",
        classifier=_torch("classifier"),
        regressor=_torch("regressor"),
        classifier_space=_TORCH_SPACE,
        regressor_space=_TORCH_SPACE,
        scale=True,
        requires="torch",
        modules=("torch", "skorch"),
        epochs=EpochHook("max_epochs"),
        knobs=(
            Knob("dropout", "higher", "share of units dropped while training"),
            Knob("weight_decay", "higher", "AdamW's decay of the weights (L2)"),
            _WIDTH,
            _DEPTH,
        ),
    ),
]
