from spamdrill.deliver.main import entry

entry()
