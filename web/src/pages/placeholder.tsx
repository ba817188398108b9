export function PlaceholderPage({ title, text }: { title: string; text: string }) {
  return (
    <section aria-labelledby="placeholder-title">
      <h1 id="placeholder-title">{title}</h1>
      <p class="card muted">{text}</p>
    </section>
  );
}
