# The mcycle figure of docs/models/bayesian_mlp.md: predictive mean with 50 % and 95 % bands of
# the homoscedastic and the heteroscedastic BNN, over the data. The data file is written by the
# example:
#   build/examples/bayesian_mlp_mcycle --out docs/figures
#   gnuplot docs/figures/bayesian_mlp_mcycle.gp      (from the repository root; gnuplot-nox)
set terminal pngcairo size 1200,480 font ",11"
set output "docs/figures/bayesian_mlp_mcycle.png"
data = "docs/figures/bayesian_mlp_mcycle.tsv"
set multiplot layout 1,2
set xlabel "time after impact (ms)"
set ylabel "head acceleration (g)"
set yrange [-200:120]
set key left bottom
do for [k = 0:1] {
  c = 2 + 7 * k
  set title (k == 0 ? "homoscedastic BNN (one learned noise variance)" : "heteroscedastic BNN (network predicts the noise)")
  plot data index 0 using 1:(column(c + 3)):(column(c + 4)) with filledcurves lc rgb "#c6dbef" title "95 %", \
       data index 0 using 1:(column(c + 1)):(column(c + 2)) with filledcurves lc rgb "#6baed6" title "50 %", \
       data index 0 using 1:(column(c)) with lines lw 2 lc rgb "#08306b" title "predictive mean", \
       data index 1 using 1:2 with points pt 7 ps 0.5 lc rgb "black" title "data"
}
unset multiplot
