pub mod graph_sim;
