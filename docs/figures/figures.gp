# Renders the documentation's figures from the examples' plot data. Called by make_figures.sh
# with -e "data='DIR'; out='DIR'"; needs gnuplot's pngcairo terminal (Debian: gnuplot-nox).
set terminal pngcairo size 900,600 font "DejaVu Sans,11" noenhanced
set datafile commentschars "#"
set key opaque box
set grid lc rgb "#dddddd"
colors = "#1b9e77 #d95f02 #7570b3 #e7298a #66a61e #e6ab02"

# ---- Old Faithful: the chosen mixture, its 50% and 95% ellipses ------------------------------
set output out."/gaussian_mixture_faithful.png"
set title "Old Faithful: the mixture chosen by BIC (ellipses hold 50% and 95% of each component)"
set xlabel "eruption duration (min)"
set ylabel "waiting time to the next eruption (min)"
stats data."/faithful_ellipses.tsv" nooutput
ncomp = STATS_blocks / 2
stats data."/faithful_points.tsv" using 3 nooutput
plot for [k=0:ncomp-1] data."/faithful_points.tsv" using 1:($3 == k ? $2 : 1/0) \
       with points pt 7 ps 0.6 lc rgb word(colors, k + 1) title sprintf("component %d", k + 1), \
     for [k=0:ncomp-1] data."/faithful_ellipses.tsv" index 2*k using 1:2 with lines lw 2 dt 2 \
       lc rgb word(colors, k + 1) notitle, \
     for [k=0:ncomp-1] data."/faithful_ellipses.tsv" index 2*k+1 using 1:2 with lines lw 2 \
       lc rgb word(colors, k + 1) notitle

# ---- Old Faithful: BIC over K and covariance types ------------------------------------------
set output out."/gaussian_mixture_bic.png"
set title "Old Faithful: BIC of the best of 10 starts (lower is better)"
set xlabel "components K"
set ylabel "BIC"
set xtics 1
set key top right
plot for [c=2:5] data."/faithful_bic.tsv" using 1:c with linespoints lw 2 pt 7 \
       lc rgb word(colors, c - 1) title word("full diagonal spherical tied", c - 1)
set xtics autofreq

# ---- Neyman-Scott: joint vs marginal MLE as N grows -----------------------------------------
set output out."/neyman_scott_consistency.png"
set title "Neyman-Scott (theta = 2): the joint MLE converges to theta (K-1)/K, the marginal MLE to theta"
set xlabel "groups N"
set ylabel "estimate of theta"
set logscale x
set format x "10^{%L}"
set format x "%.0e"
set key bottom right
plot 2 with lines lc rgb "black" dt 2 title "theta", \
     1 with lines lc rgb word(colors, 2) dt 3 title "theta (K-1)/K, K = 2", \
     1.6 with lines lc rgb word(colors, 3) dt 3 title "theta (K-1)/K, K = 5", \
     data."/neyman_scott_consistency.tsv" index 0 using 1:3 with linespoints pt 7 lc rgb word(colors, 1) title "marginal MLE (EM), K = 2", \
     data."/neyman_scott_consistency.tsv" index 1 using 1:3 with linespoints pt 5 lc rgb word(colors, 4) title "marginal MLE (EM), K = 5", \
     data."/neyman_scott_consistency.tsv" index 0 using 1:2 with linespoints pt 6 lc rgb word(colors, 2) title "joint MLE, K = 2", \
     data."/neyman_scott_consistency.tsv" index 1 using 1:2 with linespoints pt 4 lc rgb word(colors, 3) title "joint MLE, K = 5"
unset logscale x
set format x "%g"

# ---- Factor analysis: each solver's objective per pass, and the log-likelihood it ends at -----
methods = "exact-EM mean-field-VEM linear-VAE"
set output out."/factor_analysis_gaps.png"
set terminal pngcairo size 1100,500 font "DejaVu Sans,10" noenhanced
set multiplot layout 1,2 title "Factor analysis: distance below the maximum log-likelihood per pass (solid: the objective each solver climbs; dashed: log-likelihood at its final parameters)"
set logscale y
set format y "%g"
do for [panel in "simulation fashion_mnist"] {
  file = data."/fa_gaps_".panel.".tsv"
  set autoscale y  # stats honours the current ranges
  stats file index 0 using 3 nooutput
  top = STATS_max  # exact EM's final log-likelihood, the maximum
  set yrange [1e-4 : 10]
  set title (panel eq "simulation") ? "simulation: d = 20, N = 5000, k = 4" : "Fashion-MNIST: d = 784, N = 2000, k = 10"
  set xlabel "pass over the data (EM iteration or SGD epoch)"
  set ylabel "maximum log-likelihood minus value (nats per observation)"
  set key top right
  plot for [m=0:2] file index m using 1:(top - $2 > 0 ? top - $2 : 1/0) with lines lw 2 lc rgb word(colors, m + 1) title word(methods, m + 1), \
       for [m=1:2] file index m using 1:(top - $3) with lines lw 2 dt 2 lc rgb word(colors, m + 1) notitle
}
unset multiplot
unset logscale y
set yrange [*:*]

# ---- Linear VAE: the ELBO per epoch ----------------------------------------------------------
set terminal pngcairo size 900,600 font "DejaVu Sans,11" noenhanced
set output out."/linear_vae_elbo.png"
set title "Linear VAE (d = 10, k = 3): ELBO per epoch, and exact values at the returned parameters"
set xlabel "epoch"
set ylabel "nats per observation"
set key bottom right
set autoscale y
stats data."/linear_vae_trace.tsv" using 5 nooutput
set yrange [STATS_max - 0.5 : STATS_max + 0.15]
plot data."/linear_vae_trace.tsv" using 1:2 with lines lw 2 lc rgb word(colors, 1) title "training ELBO (Monte Carlo estimate over the epoch)", \
     "" using 1:3 with lines lw 2 lc rgb word(colors, 2) title "held-out ELBO (exact)", \
     "" using 1:4 with lines dt 2 lc rgb word(colors, 3) title "training ELBO at the returned parameters (exact)", \
     "" using 1:5 with lines dt 2 lc rgb "black" title "log-likelihood of the learned decoder", \
     "" using 1:6 with lines dt 3 lc rgb word(colors, 4) title "log-likelihood of the true parameters"
