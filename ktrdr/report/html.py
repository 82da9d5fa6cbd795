"""One self-contained HTML report of a finished operation: its charts, its tables, what produced it.

A backtest's page: the metrics; one chart of three rows on a shared, zoomable time axis (equity
against buy-and-hold, the drawdown, the close with each trade's entry and exit marked); the trades;
and what produced it (strategy and its YAML's SHA-256, model version and training range, data
range, costs, operation). A training's page: loss and accuracy per epoch with the best epoch
marked, the confusion matrix of the test split, the metrics of each split, and what produced it.
Results stored before a curve existed get the charts they can have and a note for the rest.

The page opens offline: plotly's JavaScript is inlined once (about 4.8 MB, plus the data), each
figure's data sits in the page, and nothing names an outside address to load (a test loads the
page in headless Chromium and checks that it requests nothing). Every text from the result is
HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ktrdr import __version__
from ktrdr.errors import ValidationError
from ktrdr.report import require
from ktrdr.report.results import (
    CLASS_NAMES,
    HEADLINE_METRICS,
    Curves,
    Trade,
    backtest_curves,
    backtest_trades,
    confusion_matrix,
    result_rows,
    training_history,
    wiped_out_line,
)

# Metrics that are fractions, shown as percentages.
FRACTIONS = {
    "total_return",
    "annualized_return",
    "max_drawdown",
    "volatility",
    "win_rate",
    "buy_and_hold_return",
    "accuracy",
    "baseline_accuracy",
    "balanced_accuracy",
}
STRATEGY, BENCHMARK, LOSS, GAIN, NEUTRAL = "#1f77b4", "#7f7f7f", "#d62728", "#2ca02c", "#444444"
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
body { padding: 0 16px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; } .note { color: #8a6d3b; background: #fcf8e3; padding: 6px 10px; }
.alert { color: #a94442; background: #f2dede; padding: 8px 12px; font-weight: bold; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 3px 10px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; } #provenance td { text-align: left; }
.metrics { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 8px; }
.metric { border: 1px solid #e3e3e3; border-radius: 6px; padding: 8px 10px; }
.metric .name { color: #666; font-size: 0.8em; } .metric .value { font-size: 1.25em; }
.scroll { max-height: 480px; overflow: auto; border: 1px solid #eee; }
"""


def operation_report(operation: Mapping[str, Any]) -> str:
    """The HTML page of a finished backtest or training; ValidationError when there is nothing to
    report (no result: the operation failed, was cancelled or is still running)."""
    result = operation.get("result")
    kind = operation.get("operation_type")
    if not isinstance(result, Mapping) or not result:
        status = operation.get("status", "unknown")
        raise ValidationError(
            f"operation {operation.get('operation_id')} is {status} and has no result to report",
            details={"status": status},
        )
    if kind == "backtesting":
        return backtest_report(operation, result)
    if kind == "training":
        return training_report(operation, result)
    raise ValidationError(f"no report for operations of type {kind!r}")


# --- backtests ------------------------------------------------------------------------------------


def backtest_report(operation: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    curves = backtest_curves(result)
    trades = backtest_trades(result)
    title = f"Backtest of {_what(result)}"
    period = f"{_day(result.get('start'))} to {_day(result.get('end'))}, {result.get('bars', '?')} bars"
    sections = [_header(title, period, operation)]
    if line := wiped_out_line(result):
        sections.append(f'<p class="alert">{_e(line)}</p>')
    headline = [(name, value) for name, value in result_rows(result) if name in HEADLINE_METRICS]
    sections.append(_metric_cards("Metrics", headline))
    sections.append("<h2>Equity, drawdown and trades</h2>")
    if curves is None:
        sections.append('<p class="note">This result holds no equity curve: there is nothing to chart.</p>')
    else:
        notes, figure = _backtest_figure(curves, trades, result)
        sections += [f'<p class="note">{_e(n)}</p>' for n in notes]
        sections.append(_figure_html(figure, "backtest-chart", height=figure.layout.height))
    sections.append(_trades_table(result, trades))
    sections.append(_provenance(_backtest_provenance(operation, result)))
    return _page(title, sections)


def _backtest_figure(curves: Curves, trades: list[Trade], result: Mapping[str, Any]) -> tuple[list[str], Any]:
    go = require("plotly.graph_objects", "the HTML report")
    subplots = require("plotly.subplots", "the HTML report")
    notes: list[str] = []
    times = [_axis_time(t) for t in curves.utc]
    has_price = curves.close is not None
    rows = 3 if has_price else 2
    heights = [0.45, 0.2, 0.35] if has_price else [0.65, 0.35]
    titles = ["Equity", "Drawdown (% below the running peak)", "Close, with each trade's entry and exit"]
    figure = subplots.make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=heights,
        subplot_titles=titles[:rows],
    )
    figure.add_trace(
        go.Scatter(x=times, y=curves.equity, name="strategy", line={"color": STRATEGY, "width": 1.6}),
        row=1,
        col=1,
    )
    if curves.buy_and_hold is not None:
        figure.add_trace(
            go.Scatter(
                x=times,
                y=curves.buy_and_hold,
                name="buy & hold (no costs)",
                line={"color": BENCHMARK, "width": 1.2, "dash": "dash"},
            ),
            row=1,
            col=1,
        )
    else:
        notes.append("This result predates the buy-and-hold curve: the equity is drawn alone.")
    if curves.legacy:
        notes.append(
            "This result predates the stored curves: its equity is an evenly spaced sample, so peaks and "
            "troughs between two samples are not drawn, and the drawdown is the sample's own."
        )
    depth = [-100.0 * d if d is not None else None for d in curves.drawdown]
    figure.add_trace(
        go.Scatter(
            x=times, y=depth, name="drawdown", fill="tozeroy", line={"color": LOSS, "width": 1}, opacity=0.6
        ),
        row=2,
        col=1,
    )
    if has_price:
        figure.add_trace(
            go.Scatter(x=times, y=curves.close, name="close", line={"color": NEUTRAL, "width": 1}),
            row=3,
            col=1,
        )
        for name, symbol, colour, pick in _trade_markers():
            chosen = [t for t in trades if pick(t)]
            if not chosen:
                continue
            entry = name.endswith("entry")
            figure.add_trace(
                go.Scatter(
                    x=[_axis_time(t.entry_utc if entry else t.exit_utc) for t in chosen],
                    y=[t.entry_price if entry else t.exit_price for t in chosen],
                    name=name,
                    mode="markers",
                    marker={
                        "symbol": symbol,
                        "color": colour,
                        "size": 9,
                        "line": {"width": 0.5, "color": "#222"},
                    },
                    text=[_trade_hover(t) for t in chosen],
                    hovertemplate="%{text}<extra></extra>",
                ),
                row=3,
                col=1,
            )
        if result.get("trades_truncated"):
            notes.append(f"Only the first {len(trades)} of {result.get('trades_total')} trades are marked.")
    else:
        notes.append("This result predates the stored prices: the price chart with the trades is left out.")
    if result.get("wiped_out") and (wiped_at := _parse_time(result.get("wiped_out_at"))):
        figure.add_vline(x=_axis_time(wiped_at), line={"color": LOSS, "dash": "dot"})
    if curves.bars and curves.bars > len(times):
        notes.append(
            f"The curves keep {len(times)} of the run's {curves.bars} bars: each stretch's highest and "
            "lowest equity, drawdown and close, so no peak or trough is lost."
        )
    _layout(figure, height=900 if has_price else 620)
    figure.update_yaxes(title_text="equity", row=1, col=1)
    figure.update_yaxes(title_text="%", row=2, col=1)
    figure.update_xaxes(title_text="UTC", row=rows, col=1)
    return notes, figure


def _layout(figure: Any, *, height: int) -> None:
    """One look for the time-series figures: white, one hover box per x, the legend on top."""
    figure.update_layout(
        height=height,
        template="plotly_white",
        hovermode="x unified",
        legend={"orientation": "h", "y": 1.1, "x": 0},
        margin={"l": 60, "r": 20, "t": 80, "b": 40},
    )


def _trade_markers() -> list[tuple[str, str, str, Any]]:
    """(trace name, marker symbol, colour, which trades) for the price chart."""
    return [
        ("long entry", "triangle-up", GAIN, lambda t: t.side == "long"),
        ("short entry", "triangle-down", LOSS, lambda t: t.side == "short"),
        ("exit", "x", NEUTRAL, lambda t: True),
    ]


def _trade_hover(trade: Trade) -> str:
    return (
        f"trade {trade.trade_id} ({trade.side}): in {trade.entry_price:.6g}, out {trade.exit_price:.6g}, "
        f"net {trade.net_pnl:+,.2f}"
        + (f" ({trade.return_pct:+.2f} %)" if trade.return_pct is not None else "")
    )


def _trades_table(result: Mapping[str, Any], trades: list[Trade]) -> str:
    total = result.get("trades_total", len(trades))
    head = f"<h2>Trades ({_e(total)})</h2>"
    if not trades:
        return head + "<p>No trades.</p>"
    note = (
        f"<p class='note'>The first {len(trades)} of {_e(total)} trades.</p>" if len(trades) != total else ""
    )
    columns = [
        "#",
        "side",
        "entry (UTC)",
        "entry price",
        "exit (UTC)",
        "exit price",
        "bars",
        "net P&L",
        "return",
        "exit",
    ]
    rows = [
        [
            trade.trade_id,
            trade.side,
            f"{trade.entry_utc:%Y-%m-%d %H:%M}",
            f"{trade.entry_price:.6g}",
            f"{trade.exit_utc:%Y-%m-%d %H:%M}",
            f"{trade.exit_price:.6g}",
            trade.bars_held if trade.bars_held is not None else "-",
            f"{trade.net_pnl:+,.2f}",
            f"{trade.return_pct:+.2f} %" if trade.return_pct is not None else "-",
            trade.exit_reason or "-",
        ]
        for trade in trades
    ]
    return head + note + f'<div class="scroll">{_table(columns, rows, table_id="trades")}</div>'


def _backtest_provenance(operation: Mapping[str, Any], result: Mapping[str, Any]) -> list[tuple[str, Any]]:
    model = _section(result, "model")
    config = _section(result, "config")
    trained = None
    if model.get("data_start"):
        trained = f"{_day(model.get('data_start'))} to {_day(model.get('data_end'))}"
        trained += f", test split from {_day(model.get('test_start'))}" if model.get("test_start") else ""
    return [
        ("strategy", result.get("strategy")),
        ("strategy YAML SHA-256", result.get("strategy_yaml_sha256")),
        ("symbol, timeframe", f"{result.get('symbol', '?')} {result.get('timeframe', '?')}"),
        ("data", f"{result.get('start')} to {result.get('end')} ({result.get('bars')} bars)"),
        ("model version", model.get("version")),
        ("model", model.get("path") or result.get("model_path")),
        ("model trained", model.get("created_at")),
        ("model trained on", trained),
        ("initial capital", _value("initial_capital", config.get("initial_capital"))),
        ("commission", _percent(config.get("commission"))),
        ("slippage", _percent(config.get("slippage"))),
        ("position fraction", _percent(config.get("position_fraction"))),
        *_operation_rows(operation),
    ]


# --- trainings ------------------------------------------------------------------------------------


def training_report(operation: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    title = f"Training of {_what(result)}"
    subtitle = (
        f"model v{result.get('version', '?')}, {result.get('epochs_run', '?')} epochs "
        f"(best {result.get('best_epoch', '?')}), on {result.get('device', '?')}"
    )
    sections = [_header(title, subtitle, operation)]
    test = _section(result, "test_metrics")
    cards = [(k, test.get(k)) for k in ("accuracy", "baseline_accuracy", "balanced_accuracy", "loss")]
    sections.append(_metric_cards("Metrics on the test split", cards))
    history = training_history(result)
    sections.append("<h2>Loss and accuracy per epoch</h2>")
    if history is None:
        sections.append(
            '<p class="note">This result predates the per-epoch history: there is no curve to draw.</p>'
        )
    else:
        sections.append(
            _figure_html(_history_figure(history, result.get("best_epoch")), "training-curves", height=640)
        )
        if history.epochs and history.epochs > len(history.epoch):
            sections.append(
                f'<p class="note">{len(history.epoch)} of {history.epochs} epochs are kept: each stretch\'s '
                "highest and lowest values and the best epoch.</p>"
            )
    sections.append("<h2>Confusion matrix on the test split</h2>")
    matrix = confusion_matrix(result, "test")
    if matrix is None:
        sections.append('<p class="note">This result predates the stored confusion matrix.</p>')
    else:
        sections.append(_figure_html(_confusion_figure(matrix), "confusion-matrix", height=460))
    sections.append(_split_table(result))
    sections.append(_provenance(_training_provenance(operation, result)))
    return _page(title, sections)


def _history_figure(history: Any, best_epoch: Any) -> Any:
    go = require("plotly.graph_objects", "the HTML report")
    subplots = require("plotly.subplots", "the HTML report")
    figure = subplots.make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=["Loss", "Accuracy"]
    )
    traces = [
        ("train loss", history.train_loss, 1, STRATEGY, "solid"),
        ("validation loss", history.val_loss, 1, LOSS, "solid"),
        ("train accuracy", history.train_accuracy, 2, STRATEGY, "dash"),
        ("validation accuracy", history.val_accuracy, 2, LOSS, "dash"),
    ]
    for name, values, row, colour, dash in traces:
        figure.add_trace(
            go.Scatter(
                x=history.epoch,
                y=values,
                name=name,
                mode="lines+markers",
                marker={"size": 4},
                line={"color": colour, "dash": dash},
            ),
            row=row,
            col=1,
        )
    if isinstance(best_epoch, int):
        figure.add_vline(x=best_epoch, line={"color": GAIN, "dash": "dot"})
        figure.add_annotation(
            x=best_epoch,
            y=1.0,
            yref="paper",
            text=f"best epoch {best_epoch}",
            showarrow=False,
            font={"color": GAIN},
            xanchor="left",
        )
    _layout(figure, height=640)
    figure.update_yaxes(tickformat=".0%", row=2, col=1)
    figure.update_xaxes(title_text="epoch", row=2, col=1)
    return figure


def _confusion_figure(matrix: list[list[int]]) -> Any:
    go = require("plotly.graph_objects", "the HTML report")
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=[f"predicted {c}" for c in CLASS_NAMES],
            y=[f"true {c}" for c in CLASS_NAMES],
            colorscale="Blues",
            texttemplate="%{z}",
            hovertemplate="%{y}, %{x}: %{z}<extra></extra>",
            name="confusion matrix",
        )
    )
    figure.update_layout(height=460, width=560, template="plotly_white", yaxis={"autorange": "reversed"})
    return figure


def _split_table(result: Mapping[str, Any]) -> str:
    names = ("samples", "loss", "accuracy", "baseline_accuracy", "balanced_accuracy")
    rows = []
    for split in ("train", "validation", "test"):
        metrics = result.get(f"{split}_metrics")
        if isinstance(metrics, Mapping):
            rows.append([split, *(_value(n, metrics.get(n)) for n in names)])
    return "<h2>Metrics per split</h2>" + (
        _table(["split", *names], rows) if rows else "<p>None recorded.</p>"
    )


def _training_provenance(operation: Mapping[str, Any], result: Mapping[str, Any]) -> list[tuple[str, Any]]:
    data = None
    if result.get("data_start"):
        data = f"{result.get('data_start')} to {result.get('data_end')}"
    return [
        ("strategy", result.get("strategy")),
        ("strategy YAML SHA-256", result.get("strategy_yaml_sha256")),
        ("symbol, timeframe", f"{result.get('symbol', '?')} {result.get('timeframe', '?')}"),
        ("data", data),
        ("test split from", result.get("test_start")),
        ("samples", json.dumps(result.get("samples")) if result.get("samples") else None),
        ("model version", result.get("version")),
        ("model", result.get("model_path")),
        ("device", result.get("device")),
        (
            "epochs run, best, stopped early",
            f"{result.get('epochs_run')}, {result.get('best_epoch')}, {result.get('stopped_early')}",
        ),
        ("duration", f"{result.get('duration_seconds')} s"),
        *_operation_rows(operation),
    ]


# --- the page -------------------------------------------------------------------------------------


def _page(title: str, sections: Sequence[str]) -> str:
    offline = require("plotly.offline", "the HTML report")
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n"
        # plotly.js, inlined once for every figure of the page: the page needs no network.
        f'<script type="text/javascript">{offline.get_plotlyjs()}</script>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _header(title: str, subtitle: str, operation: Mapping[str, Any]) -> str:
    made = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by ktrdr {__version__}"
    return (
        f'<h1>{_e(title)}</h1>\n<p class="sub">{_e(subtitle)} · operation '
        f"{_e(operation.get('operation_id'))} ({_e(operation.get('status'))}) · report made {_e(made)}</p>"
    )


def _metric_cards(heading: str, metrics: Sequence[tuple[str, Any]]) -> str:
    cards = "".join(
        f'<div class="metric"><div class="name">{_e(name)}</div>'
        f'<div class="value">{_e(_value(name, value))}</div></div>'
        for name, value in metrics
    )
    return f'<h2>{_e(heading)}</h2><div class="metrics" id="metrics">{cards}</div>' if cards else ""


def _provenance(rows: list[tuple[str, Any]]) -> str:
    shown = [[name, "not recorded" if value is None else value] for name, value in rows]
    return "<h2>What produced it</h2>" + _table(["", ""], shown, table_id="provenance")


def _operation_rows(operation: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("operation", operation.get("operation_id")),
        ("worker", operation.get("worker_id")),
        ("created, completed", f"{operation.get('created_at')}, {operation.get('completed_at')}"),
    ]


def _figure_html(figure: Any, div_id: str, *, height: int) -> str:
    pio = require("plotly.io", "the HTML report")
    return str(
        pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            config=PLOT_CONFIG,
            default_height=f"{height}px",
        )
    )


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str | None = None) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _value(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and name in FRACTIONS:
        return f"{value:.2%}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _percent(value: Any) -> str | None:
    return f"{value * 100:g} %" if isinstance(value, (int, float)) else None


def _what(result: Mapping[str, Any]) -> str:
    return f"{result.get('strategy', '?')} on {result.get('symbol', '?')} {result.get('timeframe', '')}"


def _section(result: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = result.get(key)
    return value if isinstance(value, Mapping) else {}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _day(value: Any) -> str:
    return str(value)[:10] if value else "?"


def _axis_time(moment: dt.datetime) -> str:
    """A UTC time as plotly's date axis reads it (no zone suffix: the axis is labelled UTC)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
