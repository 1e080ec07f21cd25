namespace reprise {}
