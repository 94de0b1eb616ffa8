"""Optimizers against their textbook update rules, written out independently here.

Each test runs an optimizer for several steps on parameters of random shapes,
with gradients that depend on the current parameters, and after every step
compares with a plain float64 loop of the documented formula. Both sides do the
same float64 arithmetic, in a slightly different order (in-place updates,
where the bias correction is applied), so they agree to a few ulps; rtol=1e-10
leaves room for that and still catches any wrong term, which changes the
result at order 1e-3 or more.
"""

import numpy as np
import pytest

from course_lib import Parameter
from course_lib.backend import gpu_available, gpu_unavailable_reason
from course_lib.optim import SGD, AdaGrad, Adam, RMSProp

STEPS = 7
RTOL = 1e-10


def random_shapes(rng):
    """Two or three parameter shapes of different ranks, so per-parameter state matters."""
    shapes = [(int(rng.integers(1, 6)),),
              (int(rng.integers(2, 7)), int(rng.integers(1, 5))),
              (int(rng.integers(1, 4)), int(rng.integers(2, 4)), int(rng.integers(1, 3)))]
    return shapes[: int(rng.integers(2, 4))]


def gradient(theta, noise):
    """A gradient that depends on the parameter (non-convex) plus noise of the same shape."""
    return 0.5 * theta ** 3 - theta + noise


def run_and_compare(make_opt, reference_step, seed):
    """Step the optimizer and the reference side by side; compare after each step."""
    rng = np.random.default_rng(seed)
    shapes = random_shapes(rng)
    thetas = [rng.normal(size=s) for s in shapes]           # the reference copies
    params = [Parameter(t.copy()) for t in thetas]
    states = [{} for _ in shapes]
    opt = make_opt(params)
    for t in range(1, STEPS + 1):
        noises = [rng.normal(size=s) for s in shapes]
        for p, noise in zip(params, noises):
            p.grad[...] = gradient(p.data, noise)
        opt.step()
        for i, noise in enumerate(noises):
            g = gradient(thetas[i], noise)
            thetas[i] = reference_step(thetas[i], g, states[i], t)
            np.testing.assert_allclose(params[i].data, thetas[i], rtol=RTOL, atol=1e-12,
                                       err_msg=f"parameter {i} after step {t}")


# ---------------------------------------------------------------- SGD

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lr, mu, nesterov, wd", [
    (0.1, 0.0, False, 0.0),
    (0.05, 0.9, False, 0.0),
    (0.03, 0.5, True, 0.0),
    (0.02, 0.8, True, 0.01),
    (0.1, 0.0, False, 0.1),
])
def test_sgd_matches_formula(seed, lr, mu, nesterov, wd):
    def reference(theta, g, state, t):
        g = g + wd * theta
        if mu > 0:
            b = state.get("b", np.zeros_like(theta))
            b = mu * b + g
            state["b"] = b
            g = g + mu * b if nesterov else b
        return theta - lr * g

    run_and_compare(lambda ps: SGD(ps, lr=lr, momentum=mu, nesterov=nesterov, weight_decay=wd),
                    reference, seed)


# ---------------------------------------------------------------- AdaGrad

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lr, eps, wd", [(0.1, 1e-10, 0.0), (0.5, 1e-3, 0.0), (0.05, 1e-10, 0.05)])
def test_adagrad_matches_formula(seed, lr, eps, wd):
    def reference(theta, g, state, t):
        g = g + wd * theta
        s = state.get("s", np.zeros_like(theta)) + g ** 2
        state["s"] = s
        return theta - lr * g / (np.sqrt(s) + eps)

    run_and_compare(lambda ps: AdaGrad(ps, lr=lr, eps=eps, weight_decay=wd), reference, seed)


# ---------------------------------------------------------------- RMSProp

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lr, alpha, eps, wd", [
    (0.01, 0.99, 1e-8, 0.0), (0.05, 0.9, 1e-3, 0.0), (0.02, 0.5, 1e-8, 0.1)])
def test_rmsprop_matches_formula(seed, lr, alpha, eps, wd):
    def reference(theta, g, state, t):
        g = g + wd * theta
        v = alpha * state.get("v", np.zeros_like(theta)) + (1 - alpha) * g ** 2
        state["v"] = v
        return theta - lr * g / (np.sqrt(v) + eps)

    run_and_compare(lambda ps: RMSProp(ps, lr=lr, alpha=alpha, eps=eps, weight_decay=wd),
                    reference, seed)


# ---------------------------------------------------------------- Adam

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lr, betas, eps, wd", [
    (1e-3, (0.9, 0.999), 1e-8, 0.0),
    (0.05, (0.8, 0.99), 1e-6, 0.0),
    (0.01, (0.0, 0.5), 1e-8, 0.0),
    (0.02, (0.9, 0.999), 1e-8, 0.1),
])
def test_adam_matches_formula(seed, lr, betas, eps, wd):
    b1, b2 = betas

    def reference(theta, g, state, t):
        g = g + wd * theta
        m = b1 * state.get("m", np.zeros_like(theta)) + (1 - b1) * g
        v = b2 * state.get("v", np.zeros_like(theta)) + (1 - b2) * g ** 2
        state["m"], state["v"] = m, v
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + eps)

    run_and_compare(lambda ps: Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=wd),
                    reference, seed)


# ---------------------------------------------------------------- first steps by hand

def test_first_steps_have_known_size():
    # With eps = 0 the first step is known without any formula from the code:
    # Adam's bias correction makes it lr*sign(g), AdaGrad's too, and RMSProp's
    # is lr*sign(g)/sqrt(1 - alpha).
    g = np.array([3.0, -0.2, 1e-3, -50.0])
    expected = {
        "adam": 0.1 * np.sign(g),
        "adagrad": 0.1 * np.sign(g),
        "rmsprop": 0.1 * np.sign(g) / np.sqrt(1 - 0.9),
        "sgd": 0.1 * g,
    }
    makers = {
        "adam": lambda ps: Adam(ps, lr=0.1, eps=0.0),
        "adagrad": lambda ps: AdaGrad(ps, lr=0.1, eps=0.0),
        "rmsprop": lambda ps: RMSProp(ps, lr=0.1, alpha=0.9, eps=0.0),
        "sgd": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    }
    for name, make in makers.items():
        p = Parameter(np.zeros(4))
        p.grad[...] = g
        make([p]).step()
        np.testing.assert_allclose(-p.data, expected[name], rtol=1e-12, err_msg=name)


def test_momentum_accumulates_constant_gradient():
    # A constant gradient g gives b_t = g*(1 + mu + ... + mu^(t-1)).
    mu, lr, g = 0.5, 0.1, 2.0
    p = Parameter(np.zeros(3))
    opt = SGD([p], lr=lr, momentum=mu)
    total = 0.0
    for t in range(1, 6):
        p.grad[...] = g
        opt.step()
        total += lr * g * (1 - mu ** t) / (1 - mu)
        np.testing.assert_allclose(p.data, -total, rtol=1e-12)


def test_optimizers_minimise_a_quadratic():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(4, 3))
    for make in [lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                 lambda ps: AdaGrad(ps, lr=0.5),
                 lambda ps: RMSProp(ps, lr=0.01),
                 lambda ps: Adam(ps, lr=0.05)]:
        p = Parameter(np.zeros((4, 3)))
        opt = make([p])
        for _ in range(500):
            opt.zero_grad()
            p.grad += p.data - target        # gradient of 0.5*||theta - target||^2
            opt.step()
        assert np.abs(p.data - target).max() < 0.05, type(opt).__name__


# ---------------------------------------------------------------- bookkeeping

def test_zero_grad_and_grad_left_untouched_by_weight_decay():
    p = Parameter(np.ones((2, 3)))
    p.grad[...] = 0.5
    opt = Adam([p], lr=0.1, weight_decay=0.3)
    opt.step()
    np.testing.assert_array_equal(p.grad, 0.5)   # L2 term must not leak into .grad
    opt.zero_grad()
    np.testing.assert_array_equal(p.grad, 0.0)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: AdaGrad(ps, lr=0.1),
    lambda ps: RMSProp(ps, lr=0.1), lambda ps: Adam(ps, lr=0.1, weight_decay=0.01)])
def test_float32_stays_float32_and_in_place(make):
    p = Parameter(np.ones((3, 2), dtype=np.float32))
    data = p.data
    p.grad[...] = 0.25
    make([p]).step()
    assert p.data is data, "the update must be in place"
    assert p.data.dtype == np.float32
    assert np.all(p.data < 1)


def test_state_is_per_parameter():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(5))
    opt = Adam([a, b], lr=0.1)
    a.grad[...] = 1.0
    opt.step()
    b.grad[...] = 1.0
    opt.step()
    assert opt.state[a]["t"] == 2 and opt.state[b]["t"] == 2
    assert opt.state[a]["m"].shape == (2,) and opt.state[b]["m"].shape == (5,)


@pytest.mark.parametrize("make, match", [
    (lambda ps: SGD(ps, lr=-0.1), "lr"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), "nesterov"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), "momentum"),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=-1.0), "weight_decay"),
    (lambda ps: AdaGrad(ps, lr=0.1, eps=-1e-3), "eps"),
    (lambda ps: RMSProp(ps, lr=0.1, alpha=1.0), "alpha"),
    (lambda ps: Adam(ps, lr=0.1, betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda ps: Adam(ps, lr=0.1, betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda ps: Adam(ps, lr=0.1, betas=(0.9,)), "pair"),
    (lambda ps: Adam(ps, lr=float("nan")), "NaN"),
])
def test_bad_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.zeros(2))])


def test_bad_params():
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Parameter"):
        SGD(Parameter(np.zeros(2)), lr=0.1)
    with pytest.raises(TypeError, match="not a course_lib.Parameter"):
        SGD([np.zeros(2)], lr=0.1)
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="real number"):
        SGD([p], lr="0.1")
    p.grad = np.zeros(3)
    with pytest.raises(ValueError, match="gradient of shape"):
        SGD([p], lr=0.1).step()


# ---------------------------------------------------------------- PyTorch as a second oracle

# slow: importing torch alone takes several seconds on a 2-core machine.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["sgd", "nesterov", "adagrad", "rmsprop", "adam", "adam_wd"])
def test_matches_torch(name):
    torch = pytest.importorskip("torch", reason="torch is optional; install it to compare")
    ours = {
        "sgd": lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
        "nesterov": lambda ps: SGD(ps, lr=0.05, momentum=0.7, nesterov=True),
        "adagrad": lambda ps: AdaGrad(ps, lr=0.1, weight_decay=0.02),
        "rmsprop": lambda ps: RMSProp(ps, lr=0.01, alpha=0.9, eps=1e-6),
        "adam": lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.95)),
        "adam_wd": lambda ps: Adam(ps, lr=0.01, weight_decay=0.1),
    }[name]
    theirs = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
        "nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.7, nesterov=True),
        "adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.1, weight_decay=0.02),
        "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6),
        "adam": lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95)),
        "adam_wd": lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1),
    }[name]
    rng = np.random.default_rng(7)
    shapes = [(5,), (3, 4)]
    init = [rng.normal(size=s) for s in shapes]
    params = [Parameter(x.copy()) for x in init]
    tparams = [torch.tensor(x.copy(), dtype=torch.float64, requires_grad=True) for x in init]
    opt, topt = ours(params), theirs(tparams)
    for step in range(8):
        noises = [rng.normal(size=s) for s in shapes]
        for p, tp, noise in zip(params, tparams, noises):
            p.grad[...] = gradient(p.data, noise)
            tp.grad = torch.from_numpy(gradient(tp.detach().numpy(), noise))
        opt.step()
        topt.step()
        for p, tp in zip(params, tparams):
            # Same float64 formula, different operation order inside torch: a few ulps.
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} step {step}")


# ---------------------------------------------------------------- GPU

@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason=str(gpu_unavailable_reason()))
@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), lambda ps: AdaGrad(ps, lr=0.1),
    lambda ps: RMSProp(ps, lr=0.01), lambda ps: Adam(ps, lr=0.01, weight_decay=0.1)])
def test_cupy_matches_numpy(make):
    from course_lib.backend import asarray, to_numpy
    rng = np.random.default_rng(11)
    x0 = rng.normal(size=(6, 4))
    cpu, gpu = Parameter(x0.copy()), Parameter(asarray(x0, device="gpu"))
    opt_cpu, opt_gpu = make([cpu]), make([gpu])
    for _ in range(6):
        noise = rng.normal(size=x0.shape)
        cpu.grad[...] = gradient(cpu.data, noise)
        gpu.grad[...] = asarray(gradient(to_numpy(gpu.data), noise), device="gpu")
        opt_cpu.step()
        opt_gpu.step()
    np.testing.assert_allclose(to_numpy(gpu.data), cpu.data, rtol=1e-10, atol=1e-12)
