import io
import logging

from ganbench.budget import Budget
from ganbench.harness.progress import Progress
from ganbench.harness.trainer import LogPoint


def test_plain_lines_when_not_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="ganbench.harness.progress")
    progress = Progress("cgan seed 0", Budget.parse("100steps"), stream=io.StringIO())
    assert progress.bar is None
    progress.update(LogPoint(step=25, images_seen=1600, train_seconds=2.0, losses={"d_loss": 1.2, "g_loss": 0.7}))
    progress.update(LogPoint(step=50, images_seen=3200, train_seconds=4.0, losses={"d_loss": 1.2, "g_loss": 0.7}))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["cgan seed 0: step 25 (25% of 100steps), 800 img/s, d_loss 1.200, g_loss 0.700, 0:06 left"]


def test_a_bar_on_a_terminal_shows_step_rate_losses_and_time_left():
    stream = io.StringIO()
    progress = Progress("dcgan seed 1", Budget.parse("10s"), stream=stream, bar=True)
    progress.update(LogPoint(step=40, images_seen=2560, train_seconds=4.0, losses={"g_loss": 2.0}))
    progress.close()
    text = stream.getvalue()
    assert "dcgan seed 1" in text and "step 40" in text and "640 img/s" in text and "g_loss 2.000" in text
    assert "0:06 left" in text
