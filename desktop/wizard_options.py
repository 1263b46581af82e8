"""The setup wizard's last page: the profile's name, how often to synchronise, which
contacts, the summary of what the profile will read, and the save's progress."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWizardPage,
)


class OptionsPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Synchronisation")
        self.name = QLineEdit("default")
        self.name.setObjectName("setupProfileName")
        self.interval = QSpinBox()
        self.interval.setObjectName("setupInterval")
        self.interval.setRange(1, 1440)
        self.interval.setValue(15)
        self.interval.setSuffix(" minutes")
        self.scope = QComboBox()
        self.scope.setObjectName("setupContactsScope")
        self.scope.view().setAccessibleName("Contacts to synchronise: choices")
        self.scope.addItem("Only the contacts I own", "owned")
        self.scope.addItem("All contacts I can see", "all")
        self.status = QLabel()
        self.status.setObjectName("setupStatus")
        self.status.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setObjectName("setupSummary")
        self.summary.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Profile name:", self.name)
        form.addRow("Synchronise every:", self.interval)
        form.addRow("Contacts:", self.scope)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.status)


__all__ = ["OptionsPage"]
