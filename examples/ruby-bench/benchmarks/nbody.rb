require "harness"

# A small n-body step loop: floating point and method calls.
Body = Struct.new(:x, :y, :vx, :vy, :m)

def step(bodies, dt)
  bodies.each do |a|
    bodies.each do |b|
      next if a.equal?(b)
      dx = b.x - a.x
      dy = b.y - a.y
      d3 = (dx * dx + dy * dy + 0.01)**1.5
      a.vx += dt * b.m * dx / d3
      a.vy += dt * b.m * dy / d3
    end
  end
  bodies.each { |b| b.x += dt * b.vx; b.y += dt * b.vy }
end

run_benchmark(10) do
  bodies = Array.new(5) { |i| Body.new(i.to_f, (i * 2).to_f, 0.0, 0.0, 1.0 + i) }
  200.times { step(bodies, 0.01) }
end
