from spamdrill.spamc.main import entry

entry()
