"""devstack's iniset/iniget for tools/cloud/slm-conf.sh: ini.py set FILE SECTION OPTION VALUE,
ini.py get FILE SECTION OPTION."""
import configparser
import sys


def load(path):
    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(path)
    return cp


def main(argv):
    cmd, path, section, option = argv[:4]
    cp = load(path)
    if cmd == "get":
        if cp.has_section(section) or section == "DEFAULT":
            print(cp.get(section, option, fallback=""))
        return 0
    value = argv[4] if len(argv) > 4 else ""
    if section != "DEFAULT" and not cp.has_section(section):
        cp.add_section(section)
    cp.set(section, option, value)
    with open(path, "w") as f:
        cp.write(f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
