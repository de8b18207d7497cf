# The bundled Old Faithful and Hasselblad data as CSV files in the current folder
python -c "from emkit.datasets import data_path as p; import shutil; [shutil.copy(p(f), '.') for f in ('faithful.csv', 'hasselblad_deaths.csv')]"
head -3 faithful.csv
emkit fit faithful.csv --model gaussian --components 2 --n-init 5 --random-state 0 --save faithful.emkit
emkit fit hasselblad_deaths.csv --model poisson --columns deaths --weights freq --se sem --random-state 0
emkit select faithful.csv --components 1-4 --random-state 0
emkit predict faithful.emkit faithful.csv --output labels.csv
head -4 labels.csv
