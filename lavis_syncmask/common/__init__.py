"""Cross-cutting helpers every layer uses: package and data paths (`paths`), process groups and
collectives (`distributed`), checkpoint reading and writing (`checkpoint`)."""
