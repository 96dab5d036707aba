"""dataigm answers: answer sheets, the judged images of a run with every verdict, as a Hub dataset folder that
others re-score without regenerating."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dataigm.commands._options import Command, add_batch_size_flag, add_device_flag, add_json_flag, add_judge_flag, add_workers_flag


COMMAND = Command("answers", order=66,
                  help="export a run's judged images with every verdict (an answer sheet); re-score one with another judge")


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="answers_command", metavar="ACTION", required=True)
    exp = actions.add_parser("export", help="an eval or benchmark run -> an answer-sheet dataset folder (load_dataset reads it; push publishes it)",
                             description="Judge every image of RUN's reports again with the judges they used and write images, prompts, "
                             "seeds, methods and each judge's verdict and score (with its spec and weights sha256) as webdataset shards "
                             "with a card, answers.json and manifest.json.")
    exp.add_argument("run", type=Path, help="a 'dataigm eval --out' folder (report.json) or a 'dataigm benchmark' folder")
    exp.add_argument("--out", type=Path, required=True, help="the answer-sheet folder to write")
    res = actions.add_parser("rescore", help="add another judge's verdicts to an answer sheet and write a new report",
                             description="Judge the sheet's images with SPEC (on CPU unless --device), append its verdict to every "
                             "sample, and write an eval report (report.json, report.md, chart) for it beside every earlier judge.")
    res.add_argument("sheet", type=Path, metavar="DIR", help="an answer-sheet folder ('dataigm answers export --out')")
    add_judge_flag(res, help="the judge spec to add ('dataigm list-judges')", repeat=False)
    res.add_argument("--threshold", type=float, help="override the judge's decision threshold")
    res.add_argument("--concept", help="the class that counts as the concept (multi-class judges)")
    res.add_argument("--report", type=Path, help="where the report goes (default: DIR-report-<n>, n = the judge's index)")
    for a in (exp, res):
        add_batch_size_flag(a, of="images judged")
        add_workers_flag(a)
        add_device_flag(a)
        add_json_flag(a)


def run(args: argparse.Namespace) -> int:
    from dataigm.report.answers import export_answers, rescore

    progress = sys.stderr.isatty() and not args.json
    kw = {"batch_size": args.batch_size, "workers": args.workers, "device": args.device, "progress": progress}
    if args.answers_command == "export":
        sheet = export_answers(args.run, args.out, **kw)
        print(json.dumps(sheet, sort_keys=True) if args.json else f"answer sheet: {args.out} ({len(sheet['judges'])} judges, methods {', '.join(sheet['methods'])})")
        return 0
    from dataigm.report.answers_report import sheet_report
    from dataigm.report.write import write_report

    sheet = rescore(args.sheet, args.judge, threshold=args.threshold, concept=args.concept, **kw)
    report = sheet_report(args.sheet)
    out = args.report or args.sheet.with_name(f"{args.sheet.name}-report-{len(sheet['judges']) - 1}")
    paths = write_report(report, out)
    print(json.dumps(report, sort_keys=True) if args.json else f"added {args.judge} as judge {len(sheet['judges']) - 1}; report: {paths['markdown']}")
    return 0
