"""Which chart each metric is drawn on, and in what order (app/metric_charts.py)."""

from app.metric_charts import group_charts, is_curve


def test_the_eval_loss_shares_the_loss_chart_and_the_reward_carries_its_spread() -> None:
    charts = group_charts(
        {
            "grad_norm": [(1, 3.0)],
            "eval_loss": [(2, 0.9)],
            "loss": [(1, 1.2), (2, 1.0)],
            "reward_std": [(1, 0.1)],
            "reward": [(1, 0.5)],
            "kl": [(1, 0.01)],
        }
    )
    by_name = {chart.name: chart for chart in charts}
    assert list(by_name) == ["loss", "grad_norm", "kl", "reward"]  # CURVE_ORDER, then a to z
    assert list(by_name["loss"].series) == ["loss", "eval_loss"]  # the chart's own metric first
    assert list(by_name["reward"].series) == ["reward", "reward_std"]
    assert by_name["loss"].summaries()[0] == {
        "metric": "loss",
        "count": 2,
        "first_step": 1,
        "last_step": 2,
        "low": 1.0,
        "high": 1.2,
        "last": 1.0,
    }


def test_an_eval_loss_before_any_training_loss_still_gets_the_loss_chart() -> None:
    charts = group_charts({"eval_loss": [(5, 0.7)]})
    assert [(c.name, list(c.series)) for c in charts] == [("loss", ["eval_loss"])]


def test_bookkeeping_values_are_no_curves() -> None:
    assert not is_curve("epoch") and not is_curve("train_runtime") and is_curve("eval_loss")
