"""File transfers for Firmware Management: firmware images served to chargers and
diagnostics received from them, over HTTP (`edge.web.files`) and FTP (`ftp`).

- `store`: the files on disk, signed firmware links, upload grants.
- `ftp`: the FTP listener for chargers that upload diagnostics only over FTP.
"""
