#!/usr/bin/env python3
"""Regenerates the `holidays` and `extra_working_days` lists of
shared/domain/policy/calendar.toml from the yearly files in
shared/domain/policy/holidays-cn/ (NateScarlet/holiday-cn, MIT; see the
README there). Run from the repository root after adding a year's file."""
import glob
import json
import os
import re

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
folder = os.path.join(root, "shared/domain/policy/holidays-cn")
target = os.path.join(root, "shared/domain/policy/calendar.toml")

holidays, extra = "holidays = [\n", "extra_working_days = [\n"
for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
    data = json.load(open(path, encoding="utf-8"))
    year = data["year"]
    holidays += f"    # {year}: {', '.join(data['papers'])}\n"
    extra += f"    # {year}\n"
    for day in data["days"]:
        line = f'    "{day["date"]}", # {day["name"]}\n'
        if day["isOffDay"]:
            holidays += line
        else:
            extra += line
holidays += "]\n"
extra += "]\n"

text = open(target, encoding="utf-8").read()
text = re.sub(r"holidays = \[\n.*?\n\]\n", lambda _: holidays, text, count=1, flags=re.S)
text = re.sub(r"extra_working_days = \[\n.*?\n\]\n", lambda _: extra, text, count=1, flags=re.S)
open(target, "w", encoding="utf-8").write(text)
