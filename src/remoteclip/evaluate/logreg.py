"""Multinomial logistic regression with an L2 penalty on the weights (the bias is not decayed),
fitted full-batch to its optimum, alone or along a grid of weight decays (the linear probe's).

The objective is mean cross-entropy + weight_decay / 2 * ||W||^2. It is strictly convex in W,
so its optimum fixes every prediction; how it is reached only changes the time. Written by
hand because the library solvers reach it slowly on this problem: torch.optim.LBFGS evaluates
the whole objective (two products with the data) at every line-search trial and starts from a
tiny first step, scipy and scikit-learn run float64 on the CPU only, and none follows a grid of
weight decays. What this module does instead, each step exact or a change of path only:

- Centred features. The bias is not decayed, so fitting x - mean(x) and moving W @ mean into
  the bias afterwards is the same problem; it removes the direction every CLIP feature shares,
  which otherwise makes the bias and the weights one badly conditioned pair.
- L-BFGS with a preconditioner: the Kronecker approximation of the Hessian that K-FAC uses,
  F (x) S + weight_decay, with F the softmax's class covariance at the fit's start and S the
  feature covariance (its eigenbasis computed once per data set).
- A line search on the logits: one product of the direction with the data gives the logits
  along the whole search line, so an iteration costs two passes over the data (the direction's
  logits, then the gradient) however many trial steps the search takes.
- Along a decreasing grid, each fit starts from the previous optimum moved by one Newton step
  for the change of weight decay, with the same approximate Hessian: no pass over the data.
- Each fit starts with the L-BFGS curvature pairs of the one before (along the grid, and the
  refit on the whole train split from the fit part's): their penalty share moved exactly to the
  new weight decay, the data share as measured. On bench_eval's 40,000 x 768 x 51 probe this took
  the grid from 264 to 158 iterations and the refit from 52 to 37, for the same choice.

Stopping rule: the direction's predicted decrease -g.d (about twice the distance to the optimum
in loss for a Newton-like direction) below 2 * tol * |loss|. The default tol, 1e-7, is close to
what float32 sums over tens of thousands of rows can resolve. Runs on any torch device; only the
CPU is exercised by the tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np
import torch

DEFAULT_TOL = 1e-7
HISTORY = 20  # curvature pairs kept (torch.optim.LBFGS's history_size default is 100; 20 suffices here)
_COV_ROWS = 4096  # rows of the feature covariance: a preconditioner needs its shape, not every row
_CLASS_FLOOR = 1e-3  # smallest class-covariance eigenvalue kept, relative to the largest (its null direction)
_WOLFE = 0.1  # line search: stop when |phi'(t)| <= 0.1 |phi'(0)| (a close-to-exact search)
_STALL = 3  # iterations in a row without a measurable decrease: the float precision floor


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device for `device`; "auto": the GPU when torch sees one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Data:
    """The rows of one fit on a device: centred, rotated into the eigenbasis of their covariance
    (S's), with a column of ones for the bias, in both layouts (logits = theta @ xt, class-major;
    gradient = G @ x). The rotation is orthogonal and the bias column is outside it, so the
    problem is the same one in other coordinates (the L2 penalty is rotation-invariant); it makes
    S diagonal, so the preconditioner's feature side is a division instead of two (dims x dims)
    products per step. theta is kept in these coordinates; `centred` and `original` convert."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        dtype: torch.dtype,
        device: torch.device,
        like: Data | None = None,
    ):
        """`like`: a Data of (mostly) the same rows, whose covariance eigenbasis serves this one
        too (the refit on the whole train split reuses the fit part's)."""
        features = torch.as_tensor(np.ascontiguousarray(x), device=device).to(dtype)
        self.mean = features.mean(0)
        centred = features - self.mean
        del features
        self.n, self.dims, self.n_classes = centred.shape[0], centred.shape[1], int(n_classes)
        if like is None:
            sample = centred[:: max(1, self.n // _COV_ROWS)]
            values, vectors = torch.linalg.eigh((sample.T @ sample / sample.shape[0]).double())
            self.spectrum = torch.cat([values.clamp_min(0), values.new_ones(1)]).to(dtype)
            self.rotation = vectors.to(dtype)
        else:
            self.spectrum, self.rotation = like.spectrum, like.rotation
        ones = torch.ones(self.n, 1, dtype=dtype, device=device)
        self.x = torch.cat([centred @ self.rotation, ones], 1)
        del centred
        self.xt = self.x.T.contiguous()
        self.y = torch.as_tensor(y, device=device)
        self.rows = torch.arange(self.n, device=device)
        self.decayed = torch.cat([torch.ones(self.dims), torch.zeros(1)]).to(dtype=dtype, device=device)

    def zeros(self) -> torch.Tensor:
        return torch.zeros(self.n_classes, self.dims + 1, dtype=self.x.dtype, device=self.x.device)

    def logits(self, theta: torch.Tensor) -> torch.Tensor:
        """(classes, rows)."""
        return theta @ self.xt

    def centred(self, weight: np.ndarray, bias: np.ndarray) -> torch.Tensor:
        """theta (weights and bias on the centred, rotated rows) of a classifier of the original rows."""
        w = torch.as_tensor(weight, device=self.x.device).to(self.x.dtype)
        b = torch.as_tensor(bias, device=self.x.device).to(self.x.dtype) + w @ self.mean
        return torch.cat([w @ self.rotation, b[:, None]], 1)

    def original(self, theta: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) as float64 arrays for the original, uncentred rows."""
        w = theta[:, :-1].double() @ self.rotation.double().T
        bias = theta[:, -1].double() - w @ self.mean.double()
        return w.cpu().numpy(), bias.cpu().numpy()


@dataclasses.dataclass
class Fit:
    """An optimum: theta on the centred rows, its logits and probabilities, and how it was reached."""

    theta: torch.Tensor
    logits: torch.Tensor
    probs: torch.Tensor
    info: dict
    memory: _Memory | None = dataclasses.field(default=None, repr=False)  # its last curvature pairs


def _loss(data: Data, logits: torch.Tensor, theta: torch.Tensor, weight_decay: float) -> torch.Tensor:
    nll = (torch.logsumexp(logits, 0) - logits[data.y, data.rows]).mean()
    return nll + 0.5 * weight_decay * (theta * theta * data.decayed).sum()


def _gradient(data: Data, probs: torch.Tensor, theta: torch.Tensor, weight_decay: float) -> torch.Tensor:
    residual = probs.clone()
    residual[data.y, data.rows] -= 1
    return (residual @ data.x) / data.n + weight_decay * theta * data.decayed


class _Preconditioner:
    """x -> (F (x) S + weight_decay)^-1 x, in the eigenbases of F (classes) and S (features; the
    data's coordinates already)."""

    def __init__(self, data: Data, probs: torch.Tensor, weight_decay: float):
        covariance = torch.diag(probs.mean(1)) - (probs @ probs.T) / probs.shape[1]
        values, vectors = torch.linalg.eigh(covariance.double())
        values = values.clamp_min(_CLASS_FLOOR * float(values.max().clamp_min(1e-12)))
        self.classes = vectors.to(data.x.dtype)
        denominator = values.to(data.x.dtype)[:, None] * data.spectrum[None, :] + weight_decay * data.decayed
        self.denominator = denominator.clamp_min(1e-12 * float(denominator.max()))

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        return self.classes @ ((self.classes.T @ g) / self.denominator)


class _Memory:
    """The last HISTORY curvature pairs (s, y) and K^-1 y, as the rows of three ring buffers, for
    the compact form of L-BFGS (Byrd, Nocedal and Schnabel 1994; Nocedal and Wright eq. 7.24): the
    direction from a few matrix products instead of the two-loop recursion's 4 * HISTORY small
    operations, the same direction in exact arithmetic. A pair is written in place of the oldest
    (no copy of the history per step); only the (pairs x pairs) matrices are put in age order."""

    def __init__(self, weight_decay: float = 0.0) -> None:
        self.count = 0
        self.weight_decay = weight_decay  # the penalty the pairs' y include
        self.s = self.y = self.ky = torch.empty(0)

    def __len__(self) -> int:
        return min(self.count, HISTORY)

    def clear(self) -> None:
        self.count = 0

    def moved(self, weight_decay: float, decayed: torch.Tensor, precondition: _Preconditioner) -> _Memory:
        """A copy of the pairs for another weight decay. The penalty's share of each y is exact
        (y changes by the decay's change times s on the decayed coordinates), and the data's share
        is the curvature measured along the path: a fit that follows starts with the curvature
        its predecessor learnt instead of rebuilding it over its first HISTORY iterations."""
        out = _Memory(weight_decay)
        m = len(self)
        if m == 0:
            return out
        age = torch.arange(self.count - m, self.count) % HISTORY  # oldest first, kept in that order
        decayed_flat = decayed.repeat(self.s.shape[1] // decayed.numel())
        out.s = self.s.clone()
        out.y = self.y.clone()
        out.y[age] += (weight_decay - self.weight_decay) * self.s[age] * decayed_flat
        out.ky = self.ky.clone()
        for row in age.tolist():
            out.ky[row] = precondition(out.y[row].view(-1, decayed.numel())).flatten()
        out.count = self.count
        return out

    def add(self, s: torch.Tensor, y: torch.Tensor, precondition: _Preconditioner) -> None:
        if self.s.shape != (HISTORY, s.numel()):
            self.s, self.y, self.ky = (s.new_empty(HISTORY, s.numel()) for _ in range(3))
        slot = self.count % HISTORY
        self.s[slot], self.y[slot], self.ky[slot] = s.flatten(), y.flatten(), precondition(y).flatten()
        self.count += 1

    def direction(self, gradient: torch.Tensor, precondition: _Preconditioner) -> torch.Tensor:
        """-H g with H0 = gamma * K^-1 (K: the Kronecker Hessian; gamma = s.y / y.K^-1 y of the last pair)."""
        hg = precondition(gradient).flatten()
        m = len(self)
        if m == 0:
            return -hg.view_as(gradient)
        s, y, ky, g = self.s[:m], self.y[:m], self.ky[:m], gradient.flatten()
        age = torch.arange(self.count - m, self.count) % HISTORY  # buffer rows, oldest first
        sy = (s @ y.T).double()[age][:, age]  # sy[i, j] = s_i . y_j in age order
        last = int(age[-1])
        gamma = float(sy[-1, -1]) / float(y[last] @ ky[last])
        a = (s @ g).double()[age]
        b = gamma * (ky @ g).double()[age]
        r = torch.triu(sy)
        u = torch.linalg.solve_triangular(r, a[:, None], upper=True)
        middle = torch.diag(torch.diagonal(sy)) + gamma * (y @ ky.T).double()[age][:, age]
        p1 = torch.linalg.solve_triangular(r.T, middle @ u - b[:, None], upper=False)[:, 0]
        weights_s, weights_ky = torch.empty_like(p1), torch.empty_like(p1)
        weights_s[age], weights_ky[age] = p1, -gamma * u[:, 0]
        hg = gamma * hg + weights_s.to(g.dtype) @ s + weights_ky.to(g.dtype) @ ky
        return -hg.view_as(gradient)


def _line_search(data: Data, fit: Fit, step_logits: torch.Tensor, slope: float, decay_terms: tuple[float, float]):
    """(t, probabilities at theta + t d): Newton's method on phi'(t), kept inside a bracket.

    phi is convex; its derivatives along the line need only the logits there, no pass over the
    data: phi'(t) = mean(E_p[zd] - zd_y) + wd (theta.d + t d.d), phi''(t) = mean(Var_p[zd]) + wd d.d.
    """
    theta_d, d_d = decay_terms
    target = step_logits[data.y, data.rows]
    t, low, high = 1.0, 0.0, float("inf")
    for _ in range(30):
        probs = torch.softmax(fit.logits + t * step_logits, 0)
        expected = (probs * step_logits).sum(0)
        d1 = float((expected - target).mean()) + theta_d + t * d_d
        if abs(d1) <= _WOLFE * abs(slope):
            break
        d2 = float(((probs * step_logits * step_logits).sum(0) - expected * expected).mean()) + d_d
        low, high = (t, high) if d1 < 0 else (low, t)
        t_next = t - d1 / max(d2, 1e-30)
        if not low < t_next < high:
            t_next = 2 * t if high == float("inf") else 0.5 * (low + high)
        t = t_next
    return t, probs


def fit(
    data: Data,
    weight_decay: float,
    start: Fit | torch.Tensor | None = None,
    *,
    from_weight_decay: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iter: int = 1000,
    memory: _Memory | None = None,
) -> Fit:
    """The optimum for `weight_decay`, from zeros, a theta, or a previous Fit (whose weight
    decay, `from_weight_decay`, a Newton predictor step moves away from). L-BFGS starts with
    the curvature pairs of `memory` or else of a previous Fit's (`_Memory.moved`), if any: on
    other rows of the same distribution (the refit after a grid) they are an approximation,
    which changes the path to the optimum, not the optimum."""
    theta = data.zeros() if start is None else start.theta if isinstance(start, Fit) else start
    if isinstance(start, Fit):
        logits, probs = start.logits, start.probs
    else:
        logits = data.logits(theta)
        probs = torch.softmax(logits, 0)
    precondition = _Preconditioner(data, probs, weight_decay)
    passes = 0.0 if isinstance(start, Fit) else 0.5
    if from_weight_decay is not None and from_weight_decay != weight_decay:
        step = precondition((from_weight_decay - weight_decay) * theta * data.decayed)
        theta, logits = theta + step, logits + data.logits(step)
        probs, passes = torch.softmax(logits, 0), passes + 0.5
    memory = memory if memory is not None else start.memory if isinstance(start, Fit) else None
    memory = _Memory(weight_decay) if memory is None else memory.moved(weight_decay, data.decayed, precondition)
    return _minimise(data, weight_decay, Fit(theta, logits, probs, {}), precondition, tol, max_iter, passes, memory)


def _minimise(data, weight_decay, fit_, precondition, tol, max_iter, passes, memory: _Memory) -> Fit:
    loss = float(_loss(data, fit_.logits, fit_.theta, weight_decay))
    gradient, passes = _gradient(data, fit_.probs, fit_.theta, weight_decay), passes + 0.5
    iterations, stalled, converged = 0, 0, False
    while iterations < max_iter and stalled < _STALL:
        d = memory.direction(gradient, precondition)
        slope = float((gradient * d).sum())
        if slope >= 0:  # not a descent direction (rounding): restart from the preconditioned gradient
            memory.clear()
            d = precondition(-gradient)
            slope = float((gradient * d).sum())
        if -slope <= 2 * tol * abs(loss):
            converged = True
            break
        step_logits = data.logits(d)
        decay_terms = (
            weight_decay * float((fit_.theta * d * data.decayed).sum()),
            weight_decay * float((d * d * data.decayed).sum()),
        )
        t, probs = _line_search(data, fit_, step_logits, slope, decay_terms)
        theta = fit_.theta + t * d
        fit_ = Fit(theta, fit_.logits + t * step_logits, probs, {})
        new_loss = float(_loss(data, fit_.logits, theta, weight_decay))
        new_gradient = _gradient(data, probs, theta, weight_decay)
        passes += 1.0
        s, y = t * d, new_gradient - gradient
        sy = float((s * y).sum())
        if sy > 1e-12 * float((s * s).sum()) ** 0.5 * float((y * y).sum()) ** 0.5:
            memory.add(s, y, precondition)
        stalled = stalled + 1 if loss - new_loss <= 1e-9 * abs(loss) else 0
        loss, gradient, iterations = new_loss, new_gradient, iterations + 1
    fit_.info = {
        "iterations": iterations,
        "loss": loss,
        "converged": converged,
        "hit_max_iter": iterations >= max_iter,
        "passes": passes,
    }
    fit_.memory = memory
    return fit_


def path(
    data: Data, weight_decays: Sequence[float], *, tol: float = DEFAULT_TOL, max_iter: int = 1000
) -> Iterator[tuple[float, Fit]]:
    """(weight decay, optimum) from the largest weight decay to the smallest, each fit started
    from the previous one's optimum and a Newton step for the change of weight decay."""
    previous: Fit | None = None
    previous_decay = None
    for weight_decay in sorted((float(v) for v in weight_decays), reverse=True):
        previous = fit(data, weight_decay, previous, from_weight_decay=previous_decay, tol=tol, max_iter=max_iter)
        previous_decay = weight_decay
        yield weight_decay, previous
