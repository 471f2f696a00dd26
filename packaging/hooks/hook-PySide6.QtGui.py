"""Qt GUI plugins as PyInstaller's own hook collects them, minus the GTK 3 platform theme.

The GTK theme plugin loads the workstation's GTK 3 next to the older or newer GLib, Cairo and
Pango copies the bundle would carry for it, a known source of start-up crashes on GNOME
desktops. Without it Qt uses its own Fusion style (which the app sets anyway) and the XDG
desktop portal for native file dialogs.
"""

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = [entry for entry in binaries if "qgtk3" not in entry[0]]
