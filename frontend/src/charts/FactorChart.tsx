// The factor breakdown as a bar chart (recharts, loaded only with the account page).
import { Bar, BarChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';

export default function FactorChart({ factors }: { factors: { name: string; points: number; maxPoints: number }[] }) {
  const data = factors.map((f) => ({ name: f.name.replace(/_/g, ' '), points: Math.round(f.points * 10) / 10, max: f.maxPoints }));
  return (
    <div style={{ height: 220, marginTop: 12 }} role="img" aria-label="Points per score factor">
      <ResponsiveContainer width="100%" height="100%">
        <BarChart data={data} layout="vertical" margin={{ left: 8, right: 16 }}>
          <XAxis type="number" domain={[0, 'dataMax']} hide />
          <YAxis type="category" dataKey="name" width={130} tick={{ fontSize: 11 }} />
          <Tooltip />
          <Bar dataKey="points" fill="#1c7ed6" radius={[0, 4, 4, 0]} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
